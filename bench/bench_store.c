/*
 * bench_store.c — the store's speed as ratios to raw SQLite doing the same storage work in the
 * same run (the machine is shared and noisy, so only ratios compare): bulk create, get by id,
 * find by an indexed field, full-text prefix search, and the run's peak memory.
 * Usage: bench_store [N]   (N contact-like records, default 1000000)
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "fts.h" /* the floor registers the engine's tokenizer on its raw connection */
#include "rapport/store.h"

#define BATCH 1000       /* Records per transaction, on both sides. */
#define CHUNK 1000       /* Reads timed together before switching sides. */
#define MAX_GETS 200000  /* Gets per side (fewer when N is smaller). */
#define MAX_FINDS 100000 /* Finds per side. */
#define SEARCHES 2000    /* Searches per side. */
#define SEED 0x5241504FULL

/* ---- data: deterministic and realistic ------------------------------------------------- */

/* A name as written, and the ASCII form an address would use. */
typedef struct {
    const char *name, *ascii;
} name_t;

static const name_t first_names[] = {
    {"James", "james"}, {"Mary", "mary"}, {"John", "john"}, {"Patricia", "patricia"},
    {"Robert", "robert"}, {"Jennifer", "jennifer"}, {"Michael", "michael"}, {"Linda", "linda"},
    {"William", "william"}, {"Elizabeth", "elizabeth"}, {"David", "david"},
    {"Barbara", "barbara"}, {"Richard", "richard"}, {"Susan", "susan"}, {"Joseph", "joseph"},
    {"Jessica", "jessica"}, {"Thomas", "thomas"}, {"Sarah", "sarah"}, {"Charles", "charles"},
    {"Karen", "karen"}, {"Christopher", "christopher"}, {"Nancy", "nancy"},
    {"Daniel", "daniel"}, {"Lisa", "lisa"}, {"Matthew", "matthew"}, {"Betty", "betty"},
    {"Anthony", "anthony"}, {"Margaret", "margaret"}, {"Mark", "mark"}, {"Sandra", "sandra"},
    {"Donald", "donald"}, {"Ashley", "ashley"}, {"Steven", "steven"}, {"Kimberly", "kimberly"},
    {"Paul", "paul"}, {"Emily", "emily"}, {"Andrew", "andrew"}, {"Donna", "donna"},
    {"Joshua", "joshua"}, {"Michelle", "michelle"}, {"Kenneth", "kenneth"},
    {"Dorothy", "dorothy"}, {"Kevin", "kevin"}, {"Carol", "carol"}, {"Brian", "brian"},
    {"Amanda", "amanda"}, {"George", "george"}, {"Melissa", "melissa"}, {"Edward", "edward"},
    {"Deborah", "deborah"}, {"Ronald", "ronald"}, {"Stephanie", "stephanie"},
    {"Timothy", "timothy"}, {"Rebecca", "rebecca"}, {"Jason", "jason"}, {"Sharon", "sharon"},
    {"Jeffrey", "jeffrey"}, {"Laura", "laura"}, {"Ryan", "ryan"}, {"Cynthia", "cynthia"},
    {"Jacob", "jacob"}, {"Kathleen", "kathleen"}, {"Gary", "gary"}, {"Amy", "amy"},
    {"Nicholas", "nicholas"}, {"Shirley", "shirley"}, {"Eric", "eric"}, {"Angela", "angela"},
    {"Jonathan", "jonathan"}, {"Helen", "helen"}, {"Stephen", "stephen"}, {"Anna", "anna"},
    {"Larry", "larry"}, {"Brenda", "brenda"}, {"Justin", "justin"}, {"Pamela", "pamela"},
    {"Scott", "scott"}, {"Nicole", "nicole"}, {"Brandon", "brandon"}, {"Emma", "emma"},
    {"Benjamin", "benjamin"}, {"Samantha", "samantha"}, {"Samuel", "samuel"},
    {"Katherine", "katherine"}, {"Gregory", "gregory"}, {"Christine", "christine"},
    {"Frank", "frank"}, {"Rachel", "rachel"}, {"Raymond", "raymond"},
    {"Catherine", "catherine"}, {"Patrick", "patrick"}, {"Janet", "janet"},
    {"Dennis", "dennis"}, {"Ruth", "ruth"}, {"Maria", "maria"}, {"José", "jose"},
    {"François", "francois"}, {"Zoë", "zoe"}, {"Åsa", "asa"}, {"Søren", "soren"},
    {"Björn", "bjorn"}, {"Łukasz", "lukasz"}, {"Ágnes", "agnes"}, {"Renée", "renee"},
    {"Chloé", "chloe"}, {"Hélène", "helene"}, {"Jürgen", "jurgen"}, {"Mónica", "monica"},
    {"Raúl", "raul"}, {"Inés", "ines"}, {"Sebastián", "sebastian"}, {"Begoña", "begona"},
    {"Joël", "joel"}, {"Maëlle", "maelle"}, {"Anaïs", "anais"}, {"Jérôme", "jerome"},
    {"Céline", "celine"}, {"Stéphane", "stephane"}, {"Małgorzata", "malgorzata"},
    {"Tomáš", "tomas"}, {"Jiří", "jiri"}, {"Ondřej", "ondrej"}, {"Özlem", "ozlem"},
    {"Gülşen", "gulsen"}, {"Çağla", "cagla"}, {"Mohammed", "mohammed"}, {"Fatima", "fatima"},
    {"Ahmed", "ahmed"}, {"Youssef", "youssef"}, {"Omar", "omar"}, {"Layla", "layla"},
    {"Hassan", "hassan"}, {"Aisha", "aisha"}, {"Hiroshi", "hiroshi"}, {"Yuki", "yuki"},
    {"Wei", "wei"}, {"Mei", "mei"}, {"Priya", "priya"}, {"Rahul", "rahul"},
    {"Arjun", "arjun"}, {"Ananya", "ananya"}, {"Olga", "olga"}, {"Ivan", "ivan"},
    {"Dmitri", "dmitri"}, {"Svetlana", "svetlana"}, {"Giulia", "giulia"}, {"Marco", "marco"},
    {"Luca", "luca"}, {"Francesca", "francesca"}, {"Lars", "lars"}, {"Ingrid", "ingrid"},
    {"Sven", "sven"}, {"Astrid", "astrid"}, {"محمد", "mohammad"}, {"علی", "ali"},
    {"فاطمه", "fatemeh"}, {"زهرا", "zahra"}, {"حسین", "hossein"}, {"رضا", "reza"},
    {"مریم", "maryam"}, {"سارا", "sara"}, {"امیر", "amir"}, {"نگار", "negar"},
    {"کاوه", "kaveh"}, {"شیرین", "shirin"}, {"مهدی", "mahdi"}, {"پریسا", "parisa"},
    {"آرش", "arash"}, {"نازنین", "nazanin"}, {"بهار", "bahar"}, {"کیان", "kian"},
    {"یاسمن", "yasaman"}, {"فرهاد", "farhad"}, {"سپیده", "sepideh"}, {"داریوش", "dariush"},
    {"لیلا", "leila"}, {"بابک", "babak"},
};

static const name_t last_names[] = {
    {"Smith", "smith"}, {"Johnson", "johnson"}, {"Williams", "williams"}, {"Brown", "brown"},
    {"Jones", "jones"}, {"García", "garcia"}, {"Miller", "miller"}, {"Davis", "davis"},
    {"Rodríguez", "rodriguez"}, {"Martínez", "martinez"}, {"Hernández", "hernandez"},
    {"López", "lopez"}, {"González", "gonzalez"}, {"Wilson", "wilson"},
    {"Anderson", "anderson"}, {"Thomas", "thomas"}, {"Taylor", "taylor"}, {"Moore", "moore"},
    {"Jackson", "jackson"}, {"Martin", "martin"}, {"Lee", "lee"}, {"Pérez", "perez"},
    {"Thompson", "thompson"}, {"White", "white"}, {"Harris", "harris"},
    {"Sánchez", "sanchez"}, {"Clark", "clark"}, {"Ramírez", "ramirez"}, {"Lewis", "lewis"},
    {"Robinson", "robinson"}, {"Walker", "walker"}, {"Young", "young"}, {"Allen", "allen"},
    {"King", "king"}, {"Wright", "wright"}, {"Scott", "scott"}, {"Torres", "torres"},
    {"Nguyen", "nguyen"}, {"Hill", "hill"}, {"Flores", "flores"}, {"Green", "green"},
    {"Adams", "adams"}, {"Nelson", "nelson"}, {"Baker", "baker"}, {"Hall", "hall"},
    {"Rivera", "rivera"}, {"Campbell", "campbell"}, {"Mitchell", "mitchell"},
    {"Carter", "carter"}, {"Roberts", "roberts"}, {"Gómez", "gomez"},
    {"Phillips", "phillips"}, {"Evans", "evans"}, {"Turner", "turner"}, {"Díaz", "diaz"},
    {"Parker", "parker"}, {"Cruz", "cruz"}, {"Edwards", "edwards"}, {"Collins", "collins"},
    {"Reyes", "reyes"}, {"Stewart", "stewart"}, {"Morris", "morris"},
    {"Morales", "morales"}, {"Murphy", "murphy"}, {"Cook", "cook"}, {"Rogers", "rogers"},
    {"Gutiérrez", "gutierrez"}, {"Ortiz", "ortiz"}, {"Morgan", "morgan"},
    {"Cooper", "cooper"}, {"Peterson", "peterson"}, {"Bailey", "bailey"}, {"Reed", "reed"},
    {"Kelly", "kelly"}, {"Howard", "howard"}, {"Ramos", "ramos"}, {"Kim", "kim"},
    {"Cox", "cox"}, {"Ward", "ward"}, {"Richardson", "richardson"}, {"Watson", "watson"},
    {"Brooks", "brooks"}, {"Chávez", "chavez"}, {"Wood", "wood"}, {"James", "james"},
    {"Bennett", "bennett"}, {"Gray", "gray"}, {"Mendoza", "mendoza"}, {"Ruiz", "ruiz"},
    {"Hughes", "hughes"}, {"Price", "price"}, {"Álvarez", "alvarez"},
    {"Castillo", "castillo"}, {"Sanders", "sanders"}, {"Patel", "patel"}, {"Myers", "myers"},
    {"Long", "long"}, {"Ross", "ross"}, {"Foster", "foster"}, {"Jiménez", "jimenez"},
    {"Müller", "muller"}, {"Schröder", "schroder"}, {"Núñez", "nunez"},
    {"Gonçalves", "goncalves"}, {"Dvořák", "dvorak"}, {"Novák", "novak"},
    {"Kowalski", "kowalski"}, {"Wiśniewski", "wisniewski"}, {"Wójcik", "wojcik"},
    {"Lefèvre", "lefevre"}, {"Dupré", "dupre"}, {"Jørgensen", "jorgensen"},
    {"Østergaard", "ostergaard"}, {"Sørensen", "sorensen"}, {"Yılmaz", "yilmaz"},
    {"Öztürk", "ozturk"}, {"Çelik", "celik"}, {"Şahin", "sahin"}, {"Björklund", "bjorklund"},
    {"Fernández", "fernandez"}, {"Tanaka", "tanaka"}, {"Suzuki", "suzuki"},
    {"Watanabe", "watanabe"}, {"Wang", "wang"}, {"Zhang", "zhang"}, {"Chen", "chen"},
    {"Liu", "liu"}, {"Sharma", "sharma"}, {"Gupta", "gupta"}, {"Singh", "singh"},
    {"Ivanov", "ivanov"}, {"Petrov", "petrov"}, {"Smirnova", "smirnova"}, {"Rossi", "rossi"},
    {"Russo", "russo"}, {"Bianchi", "bianchi"}, {"Ferrari", "ferrari"},
    {"Esposito", "esposito"}, {"Larsen", "larsen"}, {"Hansen", "hansen"},
    {"Nilsson", "nilsson"}, {"Andersson", "andersson"}, {"Johansson", "johansson"},
    {"محمدی", "mohammadi"}, {"حسینی", "hosseini"}, {"رضایی", "rezaei"}, {"احمدی", "ahmadi"},
    {"کریمی", "karimi"}, {"موسوی", "mousavi"}, {"جعفری", "jafari"}, {"رحیمی", "rahimi"},
    {"تهرانی", "tehrani"}, {"کاظمی", "kazemi"}, {"هاشمی", "hashemi"}, {"صادقی", "sadeghi"},
    {"نوری", "nouri"}, {"قاسمی", "ghasemi"}, {"عباسی", "abbasi"}, {"شریفی", "sharifi"},
    {"یزدانی", "yazdani"}, {"فرهادی", "farhadi"}, {"اکبری", "akbari"}, {"زمانی", "zamani"},
};

static const char *const companies[] = {
    "Acme Corp", "Globex", "Initech", "Umbrella Logistics", "Stark Industries",
    "Wayne Enterprises", "Hooli", "Pied Piper", "Soylent", "Vandelay Industries",
    "Nordwind GmbH", "Café Lumière SARL", "Pars Tejarat", "شرکت آریا", "Helios Energy",
    "Blue Harbor Foods", "Orbit Telecom", "Kestrel Analytics", "Maple & Stone",
    "Sakura Trading", "Andes Mining", "Baltic Shipping", "Cobalt Labs", "Delta Textiles",
    "Evergreen Health", "Fjord Seafood AS", "Granite Insurance", "Horizon Travel",
    "Iris Optics", "Juniper Legal",
};

static const char *const cities[] = {
    "London", "New York", "Berlin", "München", "Zürich", "São Paulo", "Kraków", "Paris",
    "Madrid", "Lisboa", "Tokyo", "Shanghai", "Mumbai", "Cairo", "Istanbul", "تهران", "اصفهان",
    "شیراز", "Dubai", "Toronto", "Montréal", "Mexico City", "Buenos Aires", "Oslo",
    "Stockholm", "København", "Wien", "Praha", "Warszawa", "Sydney",
};

static const char *const notes[] = {
    "Met at the trade fair; interested in the premium plan, call back in %u weeks.",
    "Prefers email. Renewal due in %u months.",
    "Referred by an existing customer; sent the brochure and %u case studies.",
    "Asked for a quote on %u seats.",
    "Decision maker is on leave; follow up after %u days.",
    "Complained about invoice #%u, resolved on the phone.",
    "Wants a demo with the team (%u people).",
    "Cold lead from the website form, score %u.",
};

#define COUNT(a) (sizeof(a) / sizeof(a)[0])

/* One generated record; the pointers are into the tables above or into the buffers. */
typedef struct {
    const name_t *first, *last;
    const char *company, *city;
    char email[128], phone[32], notes[160];
} rec_t;

static uint64_t splitmix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

/* Record @p i (1-based) is a pure function of i, so every side stores the same data and the
 * reads can name any record without keeping all of them in memory. */
static void gen(uint64_t i, rec_t *r)
{
    uint64_t h = splitmix(SEED ^ (i * 0x100000001B3ULL));
    uint64_t g = splitmix(h);
    r->first = &first_names[h % COUNT(first_names)];
    r->last = &last_names[(h >> 20) % COUNT(last_names)];
    r->company = companies[(h >> 40) % COUNT(companies)];
    r->city = cities[(g >> 8) % COUNT(cities)];
    snprintf(r->email, sizeof r->email, "%s.%s.%llu@example.com", r->first->ascii,
             r->last->ascii, (unsigned long long)i);
    snprintf(r->phone, sizeof r->phone, "+1 555 %03u %04u", (unsigned)(g >> 16) % 1000,
             (unsigned)(g >> 32) % 10000);
    snprintf(r->notes, sizeof r->notes, notes[(g >> 48) % COUNT(notes)],
             (unsigned)(g >> 52) % 40 + 2);
}

/* ---- small helpers --------------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The database files of the run, named up front so a signal handler can remove them: at full
 * size they take a few gigabytes of /tmp. */
static char tmp_dir[] = "/tmp/rapport-bench-XXXXXX";
static char tmp_files[3][4][64];

static void remove_temp(void)
{
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 4; k++)
            if (tmp_files[i][k][0])
                unlink(tmp_files[i][k]);
    rmdir(tmp_dir);
}

static void on_signal(int sig)
{
    remove_temp();
    signal(sig, SIG_DFL);
    raise(sig);
}

static _Noreturn void die(const char *what, const char *detail)
{
    fprintf(stderr, "bench_store: %s: %s\n", what, detail ? detail : "");
    remove_temp();
    exit(1);
}

static void db_check(sqlite3 *db, int rc, const char *what)
{
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        die(what, sqlite3_errmsg(db));
}

static sqlite3_stmt *prep(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    db_check(db, sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL), sql);
    return st;
}

static void exec(sqlite3 *db, const char *sql)
{
    db_check(db, sqlite3_exec(db, sql, NULL, NULL, NULL), sql);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percentile(double *v, size_t n, double p)
{
    qsort(v, n, sizeof *v, cmp_double);
    size_t k = (size_t)(p * (double)(n - 1) + 0.5);
    return v[k < n ? k : n - 1];
}

/* ---- the store side -------------------------------------------------------------------- */

static const char contact_spec[] =
    "{\"label\": \"Contact\", \"fields\": {"
    "\"first_name\": {\"type\": \"text\", \"required\": true, \"searchable\": true},"
    "\"last_name\": {\"type\": \"text\", \"searchable\": true},"
    "\"email\": {\"type\": \"email\", \"unique\": true, \"searchable\": true},"
    "\"phone\": {\"type\": \"phone\"},"
    "\"company\": {\"type\": \"text\"},"
    "\"city\": {\"type\": \"text\"},"
    "\"notes\": {\"type\": \"text\"}}}";

static rp_store_t *store_open_contact(const char *path)
{
    rp_store_t *s;
    rp_error_t err = {0};
    if (rp_store_open(path, NULL, &s, &err))
        die("cannot open the store", err.msg);
    json_t *spec = json_loads(contact_spec, 0, NULL);
    if (!spec)
        die("bad contact spec", NULL);
    if (rp_store_define(s, NULL, "contact", spec, "bench", &err))
        die("cannot define contact", err.msg);
    json_decref(spec);
    return s;
}

static json_t *rec_json(const rec_t *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "first_name", json_string(r->first->name));
    json_object_set_new(o, "last_name", json_string(r->last->name));
    json_object_set_new(o, "email", json_string(r->email));
    json_object_set_new(o, "phone", json_string(r->phone));
    json_object_set_new(o, "company", json_string(r->company));
    json_object_set_new(o, "city", json_string(r->city));
    json_object_set_new(o, "notes", json_string(r->notes));
    return o;
}

/* Stores records [first, first + n) through the bulk API; returns the seconds it took and
 * adds those spent building the input array to *json_s. */
static double store_batch(rp_store_t *s, uint64_t first, size_t n, double *json_s)
{
    double t0 = now_s();
    json_t *arr = json_array();
    rec_t r;
    for (size_t k = 0; k < n; k++) {
        gen(first + k, &r);
        json_array_append_new(arr, rec_json(&r));
    }
    double t1 = now_s();
    rp_error_t err = {0};
    if (rp_store_create_many(s, NULL, "contact", arr, NULL, NULL, &err))
        die("bulk create failed", err.msg);
    json_decref(arr);
    double t2 = now_s();
    *json_s += t1 - t0;
    return t2 - t0;
}

/* ---- the raw side: the same rows, search text and events, by hand ---------------------- */

typedef struct {
    sqlite3 *db;
    sqlite3_stmt *begin, *commit, *ins, *fts, *ev, *get, *find, *match;
    int64_t entity_no;
    bool bare; /* Only the entity rows: no search text, no events. */
    /* Time and id state, as cheap as a careful hand-written loop would keep it. */
    int64_t last_ms, last_sec;
    char stamp[32];
    uint64_t uid_hi, uid_lo;
} raw_t;

static const char raw_insert[] =
    "INSERT INTO \"contact\"(created_at,updated_at,version,created_by,updated_by,\"city\","
    "\"company\",\"email\",\"first_name\",\"last_name\",\"notes\",\"phone\")"
    " VALUES(?,?,1,?,?,?,?,?,?,?,?,?)";

/* The same schema as the store's: a scratch store defines it, then a plain connection takes
 * over, with the store's pragmas and its tokenizer. */
static void raw_open(raw_t *w, const char *path, bool bare)
{
    memset(w, 0, sizeof *w);
    rp_store_close(store_open_contact(path));
    w->bare = bare;
    if (sqlite3_open_v2(path, &w->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL))
        die("cannot open the raw database", sqlite3_errmsg(w->db));
    db_check(w->db, rp__fts_register(w->db), "cannot register the tokenizer");
    exec(w->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
    sqlite3_stmt *st = prep(w->db, "SELECT no FROM rp_entities WHERE name = 'contact'");
    if (sqlite3_step(st) != SQLITE_ROW)
        die("the raw database has no contact entity", NULL);
    w->entity_no = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    w->begin = prep(w->db, "BEGIN IMMEDIATE");
    w->commit = prep(w->db, "COMMIT");
    w->ins = prep(w->db, raw_insert);
    w->fts = prep(w->db, "INSERT INTO rp_search(rowid, body) VALUES(?, ?)");
    w->ev = prep(w->db, "INSERT INTO rp_events(uid, type, entity, record_id, actor, origin,"
                        " at, changes, cause, depth) VALUES(?,?,?,?,?,?,?,?,?,?)");
    w->get = prep(w->db, "SELECT * FROM contact WHERE id = ?");
    w->find = prep(w->db, "SELECT * FROM contact WHERE email = ?");
    w->match = prep(w->db, "SELECT rowid, rank FROM rp_search WHERE rp_search MATCH ?"
                           " ORDER BY rank LIMIT 20");
    uint64_t seed = splitmix((uint64_t)getpid() ^ (uint64_t)time(NULL));
    w->uid_hi = seed & 0xFFFF;
    w->uid_lo = splitmix(seed) >> 1;
}

static void raw_close(raw_t *w)
{
    sqlite3_stmt *all[] = {w->begin, w->commit, w->ins, w->fts, w->ev, w->get, w->find, w->match};
    for (size_t i = 0; i < COUNT(all); i++)
        sqlite3_finalize(all[i]);
    sqlite3_close(w->db);
}

/* The store's clock and its text form: "YYYY-MM-DDTHH:MM:SS.sssZ", reformatted only when the
 * second changes. */
static int64_t raw_now(raw_t *w)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (ms != w->last_ms) {
        if (ts.tv_sec != w->last_sec) {
            struct tm tm;
            time_t t = ts.tv_sec;
            gmtime_r(&t, &tm);
            strftime(w->stamp, sizeof w->stamp, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
            w->last_sec = ts.tv_sec;
        }
        int m = (int)(ms % 1000);
        w->stamp[20] = (char)('0' + m / 100);
        w->stamp[21] = (char)('0' + m / 10 % 10);
        w->stamp[22] = (char)('0' + m % 10);
        w->last_ms = ms;
    }
    return ms;
}

/* A ULID like the store's: 48 bits of milliseconds, then 80 bits counting up. */
static void raw_uid(raw_t *w, int64_t ms, char out[27])
{
    static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    if (++w->uid_lo == 0)
        w->uid_hi++;
    uint64_t t = (uint64_t)ms;
    for (int i = 9; i >= 0; i--) {
        out[i] = b32[t & 31];
        t >>= 5;
    }
    uint64_t lo = w->uid_lo, hi = w->uid_hi;
    for (int i = 25; i >= 10; i--) {
        out[i] = b32[lo & 31];
        lo = (lo >> 5) | ((hi & 31) << 59);
        hi >>= 5;
    }
    out[26] = '\0';
}

/* Appends @p s as a JSON string, escaped as jansson's json_dumps() does by default, so the
 * event text is byte for byte the store's (the generated data never needs it, but a copy that
 * escaped differently would not be the same work). */
static size_t put_json_str(char *out, size_t len, const char *s)
{
    out[len++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char e = 0;
        switch (*p) {
        case '"': e = '"'; break;
        case '\\': e = '\\'; break;
        case '\b': e = 'b'; break;
        case '\f': e = 'f'; break;
        case '\n': e = 'n'; break;
        case '\r': e = 'r'; break;
        case '\t': e = 't'; break;
        }
        if (e) {
            out[len++] = '\\';
            out[len++] = e;
        } else if (*p < 0x20) {
            len += (size_t)sprintf(out + len, "\\u%04X", *p);
        } else {
            out[len++] = (char)*p;
        }
    }
    out[len++] = '"';
    return len;
}

static void raw_step(raw_t *w, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        die(what, sqlite3_errmsg(w->db));
}

/* The store's work for one record: the row, its search text and its "created" event with
 * {field: [null, value]} over the fields in registry (alphabetical) order. */
static void raw_one(raw_t *w, const rec_t *r)
{
    int64_t ms = raw_now(w);
    const char *vals[7] = {r->city, r->company, r->email, r->first->name, r->last->name,
                           r->notes, r->phone};
    static const char *const names[7] = {"city", "company", "email", "first_name",
                                         "last_name", "notes", "phone"};
    sqlite3_bind_text(w->ins, 1, w->stamp, 24, SQLITE_STATIC);
    sqlite3_bind_text(w->ins, 2, w->stamp, 24, SQLITE_STATIC);
    sqlite3_bind_text(w->ins, 3, "system", 6, SQLITE_STATIC);
    sqlite3_bind_text(w->ins, 4, "system", 6, SQLITE_STATIC);
    for (int i = 0; i < 7; i++)
        sqlite3_bind_text(w->ins, 5 + i, vals[i], -1, SQLITE_STATIC);
    raw_step(w, w->ins, "raw insert");
    if (w->bare)
        return;
    int64_t id = sqlite3_last_insert_rowid(w->db);

    char body[512];
    int n = snprintf(body, sizeof body, "%s\n%s\n%s", r->email, r->first->name, r->last->name);
    sqlite3_bind_int64(w->fts, 1, (w->entity_no << 40) | id);
    sqlite3_bind_text(w->fts, 2, body, n, SQLITE_STATIC);
    raw_step(w, w->fts, "raw search insert");

    char changes[1024], uid[27];
    size_t len = 0;
    changes[len++] = '{';
    for (int i = 0; i < 7; i++) {
        if (i)
            changes[len++] = ',';
        len = put_json_str(changes, len, names[i]);
        memcpy(changes + len, ":[null,", 7);
        len = put_json_str(changes, len + 7, vals[i]);
        changes[len++] = ']';
    }
    changes[len++] = '}';
    raw_uid(w, ms, uid);
    sqlite3_bind_text(w->ev, 1, uid, 26, SQLITE_STATIC);
    sqlite3_bind_text(w->ev, 2, "contact.created", -1, SQLITE_STATIC);
    sqlite3_bind_text(w->ev, 3, "contact", -1, SQLITE_STATIC);
    sqlite3_bind_int64(w->ev, 4, id);
    sqlite3_bind_text(w->ev, 5, "system", -1, SQLITE_STATIC);
    sqlite3_bind_text(w->ev, 6, "core", -1, SQLITE_STATIC);
    sqlite3_bind_int64(w->ev, 7, ms);
    sqlite3_bind_text(w->ev, 8, changes, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(w->ev, 9, 0);
    sqlite3_bind_int(w->ev, 10, 0);
    raw_step(w, w->ev, "raw event insert");
}

static double raw_batch(raw_t *w, uint64_t first, size_t n)
{
    double t0 = now_s();
    rec_t r;
    raw_step(w, w->begin, "raw begin");
    for (size_t k = 0; k < n; k++) {
        gen(first + k, &r);
        raw_one(w, &r);
    }
    raw_step(w, w->commit, "raw commit");
    return now_s() - t0;
}

/* Reads every column of the current row, so the raw side pays what a caller reading a whole
 * record pays. */
static size_t read_row(sqlite3_stmt *st)
{
    size_t sum = 0;
    for (int c = 0, nc = sqlite3_column_count(st); c < nc; c++) {
        if (sqlite3_column_type(st, c) == SQLITE_INTEGER)
            sum += (size_t)sqlite3_column_int64(st, c);
        else if (sqlite3_column_text(st, c))
            sum += (size_t)sqlite3_column_bytes(st, c);
    }
    return sum;
}

/* ---- the figures ----------------------------------------------------------------------- */

typedef struct {
    rp_store_t *s;
    raw_t raw, bare;
    uint64_t n;
    uint64_t rng;
    volatile size_t sink; /* Keeps the reads' results alive. */
} bench_t;

static uint64_t next_rand(bench_t *b)
{
    b->rng = splitmix(b->rng);
    return b->rng;
}

static void bench_create(bench_t *b)
{
    double t_ours = 0, t_raw = 0, t_bare = 0, t_json = 0;
    unsigned turn = 0;
    /* The three sides take turns batch by batch, in a rotating order, so a noisy neighbour
     * slows all of them alike. */
    for (uint64_t first = 1; first <= b->n; first += BATCH, turn++) {
        size_t n = (size_t)(b->n - first + 1 < BATCH ? b->n - first + 1 : BATCH);
        for (unsigned k = 0; k < 3; k++) {
            switch ((turn + k) % 3) {
            case 0: t_ours += store_batch(b->s, first, n, &t_json); break;
            case 1: t_raw += raw_batch(&b->raw, first, n); break;
            default: t_bare += raw_batch(&b->bare, first, n); break;
            }
        }
    }
    double r_ours = (double)b->n / t_ours, r_raw = (double)b->n / t_raw;
    double r_bare = (double)b->n / t_bare;
    printf("bulk_create: %.0f rec/s, raw %.0f rec/s, ratio %.2f (bare table %.0f rec/s, "
           "ratio %.2f)\n",
           r_ours, r_raw, r_ours / r_raw, r_bare, r_ours / r_bare);
    printf("bulk_create_input_json: %.0f%% of the bulk create time is building the JSON array "
           "the API takes (ratio without it %.2f)\n",
           100.0 * t_json / t_ours, t_raw / (t_ours - t_json));
    fflush(stdout);
}

static void bench_get(bench_t *b)
{
    uint64_t total = b->n < MAX_GETS ? b->n : MAX_GETS;
    double t_ours = 0, t_raw = 0;
    int64_t ids[CHUNK];
    for (uint64_t done = 0; done < total; done += CHUNK) {
        size_t n = (size_t)(total - done < CHUNK ? total - done : CHUNK);
        for (size_t k = 0; k < n; k++)
            ids[k] = (int64_t)(next_rand(b) % b->n) + 1;
        double t0 = now_s();
        for (size_t k = 0; k < n; k++) {
            json_t *rec;
            rp_error_t err = {0};
            if (rp_store_get(b->s, "contact", ids[k], &rec, &err))
                die("get failed", err.msg);
            b->sink += json_object_size(rec);
            json_decref(rec);
        }
        double t1 = now_s();
        for (size_t k = 0; k < n; k++) {
            sqlite3_bind_int64(b->raw.get, 1, ids[k]);
            if (sqlite3_step(b->raw.get) != SQLITE_ROW)
                die("raw get found nothing", sqlite3_errmsg(b->raw.db));
            b->sink += read_row(b->raw.get);
            sqlite3_reset(b->raw.get);
        }
        double t2 = now_s();
        t_ours += t1 - t0;
        t_raw += t2 - t1;
    }
    double r_ours = (double)total / t_ours, r_raw = (double)total / t_raw;
    printf("get_by_id: %.0f gets/s, raw %.0f gets/s, ratio %.2f\n", r_ours, r_raw,
           r_ours / r_raw);
    fflush(stdout);
}

static void bench_find(bench_t *b)
{
    uint64_t total = b->n < MAX_FINDS ? b->n : MAX_FINDS;
    double t_ours = 0, t_raw = 0;
    static char emails[CHUNK][128];
    for (uint64_t done = 0; done < total; done += CHUNK) {
        size_t n = (size_t)(total - done < CHUNK ? total - done : CHUNK);
        for (size_t k = 0; k < n; k++) {
            rec_t r;
            gen(next_rand(b) % b->n + 1, &r);
            memcpy(emails[k], r.email, sizeof r.email);
        }
        double t0 = now_s();
        for (size_t k = 0; k < n; k++) {
            json_t *where = json_pack("{s:s}", "email", emails[k]), *out = NULL;
            rp_query_t q = {.entity = "contact", .where = where, .limit = 1};
            rp_error_t err = {0};
            if (rp_store_find(b->s, &q, &out, NULL, &err))
                die("find failed", err.msg);
            if (json_array_size(out) != 1)
                die("find did not find", emails[k]);
            b->sink += json_array_size(out);
            json_decref(out);
            json_decref(where);
        }
        double t1 = now_s();
        for (size_t k = 0; k < n; k++) {
            sqlite3_bind_text(b->raw.find, 1, emails[k], -1, SQLITE_STATIC);
            if (sqlite3_step(b->raw.find) != SQLITE_ROW)
                die("raw find found nothing", emails[k]);
            b->sink += read_row(b->raw.find);
            sqlite3_reset(b->raw.find);
        }
        double t2 = now_s();
        t_ours += t1 - t0;
        t_raw += t2 - t1;
    }
    double r_ours = (double)total / t_ours, r_raw = (double)total / t_raw;
    printf("find_by_email: %.0f finds/s, raw %.0f finds/s, ratio %.2f\n", r_ours, r_raw,
           r_ours / r_raw);
    fflush(stdout);
}

/* The first three code points of @p name: what a user types before expecting results. */
static void prefix3(const char *name, char *out, size_t cap)
{
    size_t i = 0;
    for (int cps = 0; name[i] && cps < 3; cps++) {
        i++;
        while ((name[i] & 0xC0) == 0x80)
            i++;
    }
    snprintf(out, cap, "%.*s", (int)i, name);
}

static void bench_search(bench_t *b)
{
    static double lat_ours[SEARCHES], lat_raw[SEARCHES];
    size_t hits_ours = 0, hits_raw = 0;
    for (int k = 0; k < SEARCHES; k++) {
        uint64_t x = next_rand(b);
        const name_t *nm = (x & 1) ? &first_names[(x >> 1) % COUNT(first_names)]
                                   : &last_names[(x >> 1) % COUNT(last_names)];
        char pfx[32], expr[48];
        prefix3(nm->name, pfx, sizeof pfx);
        snprintf(expr, sizeof expr, "\"%s\"*", pfx);
        double t0 = now_s();
        json_t *hits = NULL;
        rp_error_t err = {0};
        if (rp_store_search(b->s, pfx, NULL, 20, &hits, &err))
            die("search failed", err.msg);
        hits_ours += json_array_size(hits);
        json_decref(hits);
        double t1 = now_s();
        sqlite3_bind_text(b->raw.match, 1, expr, -1, SQLITE_STATIC);
        int rc;
        while ((rc = sqlite3_step(b->raw.match)) == SQLITE_ROW) {
            b->sink += (size_t)sqlite3_column_int64(b->raw.match, 0);
            hits_raw++;
        }
        sqlite3_reset(b->raw.match);
        if (rc != SQLITE_DONE)
            die("raw search failed", sqlite3_errmsg(b->raw.db));
        double t2 = now_s();
        lat_ours[k] = (t1 - t0) * 1e3;
        lat_raw[k] = (t2 - t1) * 1e3;
    }
    if (hits_ours != hits_raw)
        fprintf(stderr, "bench_store: search found %zu hits, raw %zu\n", hits_ours, hits_raw);
    printf("search_prefix: p50 %.3f ms, p99 %.3f ms (raw MATCH p50 %.3f ms, p99 %.3f ms; "
           "%d queries, %.1f hits each)\n",
           percentile(lat_ours, SEARCHES, 0.50), percentile(lat_ours, SEARCHES, 0.99),
           percentile(lat_raw, SEARCHES, 0.50), percentile(lat_raw, SEARCHES, 0.99), SEARCHES,
           (double)hits_ours / SEARCHES);
    fflush(stdout);
}

/* Checks that the raw side stored what the store stored for record @p id: the same field
 * values, search text and event changes (timestamps and ids aside). */
static void check_same(sqlite3 *ours, sqlite3 *raw, int64_t id)
{
    static const char *const sql[] = {
        "SELECT city||'|'||company||'|'||email||'|'||first_name||'|'||last_name||'|'||notes"
        "||'|'||phone||'|'||version||'|'||created_by FROM contact WHERE id = ?1",
        "SELECT body FROM rp_search WHERE rowid = ((SELECT no FROM rp_entities"
        " WHERE name = 'contact') << 40) | ?1",
        "SELECT type||'|'||entity||'|'||actor||'|'||origin||'|'||changes||'|'||cause||'|'||depth"
        " FROM rp_events WHERE entity = 'contact' AND record_id = ?1",
    };
    for (size_t q = 0; q < COUNT(sql); q++) {
        char got[2][1024];
        sqlite3 *dbs[2] = {ours, raw};
        for (int d = 0; d < 2; d++) {
            sqlite3_stmt *st = prep(dbs[d], sql[q]);
            sqlite3_bind_int64(st, 1, id);
            if (sqlite3_step(st) != SQLITE_ROW)
                die("check: row missing", sql[q]);
            snprintf(got[d], sizeof got[d], "%s", (const char *)sqlite3_column_text(st, 0));
            sqlite3_finalize(st);
        }
        if (strcmp(got[0], got[1]) != 0) {
            fprintf(stderr, "bench_store: the raw side stores different data for record %lld:\n"
                            "  store: %s\n  raw:   %s\n",
                    (long long)id, got[0], got[1]);
            exit(1);
        }
    }
}

static void check_all(const char *ours_path, bench_t *b)
{
    sqlite3 *db;
    if (sqlite3_open_v2(ours_path, &db, SQLITE_OPEN_READONLY, NULL))
        die("cannot reopen the store's database", ours_path);
    db_check(db, rp__fts_register(db), "cannot register the tokenizer");
    int64_t ids[] = {1, (int64_t)(b->n / 2) + 1, (int64_t)b->n};
    for (size_t i = 0; i < COUNT(ids); i++)
        check_same(db, b->raw.db, ids[i]);
    sqlite3_close(db);
}

int main(int argc, char **argv)
{
    bench_t b = {.n = 1000000, .rng = SEED};
    if (argc > 1) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(argv[1], &end, 10);
        if (errno || *end || v == 0)
            die("N must be a positive integer", argv[1]);
        b.n = v;
    }
    if (!mkdtemp(tmp_dir))
        die("cannot make a temporary directory", strerror(errno));
    static const char *const files[] = {"store.db", "raw.db", "bare.db"};
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 4; k++)
            snprintf(tmp_files[i][k], sizeof tmp_files[i][k], "%s/%s%s", tmp_dir, files[i],
                     suffixes[k]);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
    for (size_t i = 0; i < COUNT(sigs); i++)
        sigaction(sigs[i], &sa, NULL);

    printf("# bench_store: N=%llu contacts, batches of %d, sqlite %s\n",
           (unsigned long long)b.n, BATCH, sqlite3_libversion());
    fflush(stdout);
    b.s = store_open_contact(tmp_files[0][0]);
    raw_open(&b.raw, tmp_files[1][0], false);
    raw_open(&b.bare, tmp_files[2][0], true);

    bench_create(&b);
    check_all(tmp_files[0][0], &b);
    bench_get(&b);
    bench_find(&b);
    bench_search(&b);

    rp_store_close(b.s);
    raw_close(&b.raw);
    raw_close(&b.bare);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak_memory: %.1f MB (max RSS of the whole run)\n", (double)ru.ru_maxrss / 1024.0);

    remove_temp();
    return 0;
}
