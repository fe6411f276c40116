/*
 * dest.c — where webhooks may go. Addresses that lead inside (loopback, private, link-local
 * where cloud metadata answers, …, also carried inside an IPv6 address) are refused unless the
 * setting webhooks.allow_networks allows them; addresses are judged as the socket layer holds
 * them, never by how a URL spells them. And URLs shown without the credentials they may carry.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "rapport/webhook.h"

#define MAX_HOST 253

/* An IPv4 range refused by default; the IANA special-purpose registry, plus multicast. */
typedef struct {
    uint32_t net;
    int bits;
    const char *what;
} v4_range_t;

static const v4_range_t v4_denied[] = {
    {0xffffffffu, 32, "the broadcast address"},
    {0x00000000u, 8, "an unspecified address"},
    {0x0a000000u, 8, "a private address"},
    {0x64400000u, 10, "a carrier-grade NAT address"},
    {0x7f000000u, 8, "a loopback address"},
    {0xa9fe0000u, 16, "a link-local address"},
    {0xac100000u, 12, "a private address"},
    {0xc0000000u, 24, "an IETF protocol address"},
    {0xc0000200u, 24, "a documentation address"},
    {0xc0586300u, 24, "a 6to4 relay address"},
    {0xc0a80000u, 16, "a private address"},
    {0xc6120000u, 15, "a benchmarking address"},
    {0xc6336400u, 24, "a documentation address"},
    {0xcb007100u, 24, "a documentation address"},
    {0xe0000000u, 4, "a multicast address"},
    {0xf0000000u, 4, "a reserved address"},
};

/* One range of the allow list. */
typedef struct {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    int bits;
} net_t;

struct rp_webhook_allow {
    net_t *nets;
    int nnets;
    char **hosts; /* lower case, without a final dot */
    int nhosts;
};

static bool prefix_match(const uint8_t *a, const uint8_t *net, int bits)
{
    int whole = bits / 8, rest = bits % 8;
    if (memcmp(a, net, (size_t)whole) != 0)
        return false;
    if (!rest)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (net[whole] & mask);
}

/* The class of IPv4 address @p v4 (host order) when refused by default, else NULL. */
static const char *v4_class(uint32_t v4)
{
    for (size_t i = 0; i < sizeof v4_denied / sizeof v4_denied[0]; i++) {
        uint32_t mask = v4_denied[i].bits ? 0xffffffffu << (32 - v4_denied[i].bits) : 0;
        if ((v4 & mask) == v4_denied[i].net)
            return v4_denied[i].what;
    }
    return NULL;
}

static uint32_t v4_at(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * The IPv4 address IPv6 address @p a carries, and how it carries it (NULL when it carries
 * none): IPv4-mapped ::ffff:0:0/96, IPv4-compatible ::/96, IPv4-translated ::ffff:0:0:0/96,
 * NAT64's well-known 64:ff9b::/96 and 6to4's 2002::/16.
 */
static const char *v6_embedded(const uint8_t a[16], uint32_t *v4)
{
    static const uint8_t zero[12];
    static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};
    const char *kind = NULL;
    if (!memcmp(a, zero, 10) && a[10] == 0xff && a[11] == 0xff)
        kind = "IPv4-mapped";
    else if (!memcmp(a, zero, 12))
        kind = "IPv4-compatible";
    else if (!memcmp(a, zero, 8) && a[8] == 0xff && a[9] == 0xff && !a[10] && !a[11])
        kind = "IPv4-translated";
    else if (!memcmp(a, nat64, 12))
        kind = "NAT64";
    else if (a[0] == 0x20 && a[1] == 0x02) {
        *v4 = v4_at(a + 2);
        return "6to4";
    }
    if (kind)
        *v4 = v4_at(a + 12);
    return kind;
}

/* Writes the class of IPv6 address @p a into @p why when refused by default. */
static bool v6_denied(const uint8_t a[16], char *why, size_t cap)
{
    static const uint8_t zero[16];
    static const struct {
        uint8_t net[4];
        int bits;
        const char *what;
    } ranges[] = {
        {{0xfc}, 7, "a unique-local address"},
        {{0xfe, 0x80}, 10, "a link-local address"},
        {{0xfe, 0xc0}, 10, "a site-local address"},
        {{0xff}, 8, "a multicast address"},
        {{0x20, 0x01, 0x0d, 0xb8}, 32, "a documentation address"},
        {{0x3f, 0xff}, 20, "a documentation address"},
        {{0x20, 0x01}, 23, "an IETF protocol address (Teredo among them)"},
    };
    uint32_t v4 = 0;
    const char *kind, *c;
    if (!memcmp(a, zero, 16) || (!memcmp(a, zero, 15) && a[15] == 1)) {
        snprintf(why, cap, "%s", a[15] ? "a loopback address" : "an unspecified address");
        return true;
    }
    if ((kind = v6_embedded(a, &v4))) {
        char text[INET_ADDRSTRLEN];
        uint32_t n = htonl(v4);
        inet_ntop(AF_INET, &n, text, sizeof text);
        if ((c = v4_class(v4)))
            snprintf(why, cap, "%s, as %s %s", c, kind, text);
        else if (!strcmp(kind, "IPv4-compatible") || !strcmp(kind, "IPv4-translated"))
            snprintf(why, cap, "a reserved address, as %s %s", kind, text);
        else
            return false; /* a public IPv4 address reached through IPv6 */
        return true;
    }
    static const uint8_t nat64_local[6] = {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01};
    if (!memcmp(a, nat64_local, 6)) {
        snprintf(why, cap, "a NAT64 local-use address");
        return true;
    }
    static const uint8_t discard[8] = {0x01, 0x00};
    if (!memcmp(a, discard, 8)) {
        snprintf(why, cap, "a discard-only address");
        return true;
    }
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
        if (prefix_match(a, ranges[i].net, ranges[i].bits)) {
            snprintf(why, cap, "%s", ranges[i].what);
            return true;
        }
    /* Global unicast is 2000::/3; the rest is unassigned or for other uses. */
    if ((a[0] & 0xe0) != 0x20) {
        snprintf(why, cap, "a reserved address");
        return true;
    }
    return false;
}

bool rp_webhook_addr_denied(const struct sockaddr *sa, char *why, size_t cap)
{
    char spare[96];
    if (!why || !cap) {
        why = spare;
        cap = sizeof spare;
    }
    why[0] = '\0';
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        const char *c = v4_class(ntohl(in->sin_addr.s_addr));
        if (c)
            snprintf(why, cap, "%s", c);
        return c != NULL;
    }
    if (sa && sa->sa_family == AF_INET6)
        return v6_denied(((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr, why, cap);
    snprintf(why, cap, "no Internet address");
    return true;
}

/* ---- the allow list ------------------------------------------------------------------ */

void rp_webhook_allow_free(rp_webhook_allow_t *a)
{
    if (!a)
        return;
    for (int i = 0; i < a->nhosts; i++)
        free(a->hosts[i]);
    free(a->hosts);
    free(a->nets);
    free(a);
}

static int bad_entry(rp_error_t *err, const char *entry, const char *why)
{
    return rp_error_set(err, RP_EINVAL, RP_C_WEBHOOK_DEST,
                        "%s: \"%.100s\" %s (CIDR ranges such as 10.0.0.0/8 or fd00::/8, single "
                        "addresses, or host names, joined by commas)",
                        RP_WEBHOOK_ALLOW_SETTING, entry, why);
}

/* Parses "ADDR" or "ADDR/BITS" into @p n; 1 when @p entry is no address at all. */
static int parse_net(const char *entry, net_t *n, rp_error_t *err)
{
    char addr[INET6_ADDRSTRLEN + 8];
    const char *slash = strchr(entry, '/');
    size_t alen = slash ? (size_t)(slash - entry) : strlen(entry);
    if (alen >= sizeof addr)
        return slash ? bad_entry(err, entry, "is not an address range") : 1;
    memcpy(addr, entry, alen);
    addr[alen] = '\0';
    memset(n, 0, sizeof *n);
    struct in_addr loose;
    if (inet_pton(AF_INET, addr, n->addr) == 1) {
        n->family = AF_INET;
        n->bits = 32;
    } else if (inet_pton(AF_INET6, addr, n->addr) == 1) {
        n->family = AF_INET6;
        n->bits = 128;
    } else if (inet_aton(addr, &loose)) {
        /* "127.1" or "2130706433" would mean an address to the socket layer, never a name. */
        return bad_entry(err, entry, "is an IPv4 address in a short or numeric form: write it "
                                     "as four decimal numbers");
    } else {
        return slash ? bad_entry(err, entry, "is not an address range") : 1;
    }
    if (slash) {
        char *end = NULL;
        long bits = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || *end || slash[1] == '+' || slash[1] == '-' || bits < 0 ||
            bits > n->bits)
            return bad_entry(err, entry, n->family == AF_INET
                                             ? "has a prefix length that is not 0 to 32"
                                             : "has a prefix length that is not 0 to 128");
        n->bits = (int)bits;
    }
    int len = n->family == AF_INET ? 4 : 16;
    for (int i = 0; i < len; i++) {
        int keep = n->bits - i * 8;
        uint8_t mask = keep >= 8 ? 0xff : keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
        if (n->addr[i] & ~mask)
            return bad_entry(err, entry, "has bits set past its prefix length (write the "
                                         "network's first address)");
    }
    return 0;
}

static bool host_name_ok(const char *h)
{
    size_t len = strlen(h);
    if (!len || len > MAX_HOST || h[0] == '.' || h[0] == '-')
        return false;
    for (const char *p = h; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '.' || *p == '_'))
            return false;
    return strstr(h, "..") == NULL;
}

/* Adds one entry (trimmed, not empty) to @p a. */
static int add_entry(rp_webhook_allow_t *a, const char *entry, rp_error_t *err)
{
    net_t n;
    int rc = parse_net(entry, &n, err);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        net_t *more = realloc(a->nets, (size_t)(a->nnets + 1) * sizeof *more);
        if (!more)
            return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
        a->nets = more;
        a->nets[a->nnets++] = n;
        return 0;
    }
    if (!host_name_ok(entry))
        return bad_entry(err, entry, entry[0] == '[' ? "is bracketed: write an IPv6 address "
                                                       "without brackets"
                                                     : "is neither an address nor a host name");
    char **more = realloc(a->hosts, (size_t)(a->nhosts + 1) * sizeof *more);
    if (!more)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    a->hosts = more;
    char *h = strdup(entry);
    if (!h)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    for (char *p = h; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    size_t hl = strlen(h);
    if (hl > 1 && h[hl - 1] == '.')
        h[hl - 1] = '\0';
    a->hosts[a->nhosts++] = h;
    return 0;
}

int rp_webhook_allow_parse(const char *text, rp_webhook_allow_t **out, rp_error_t *err)
{
    *out = NULL;
    rp_webhook_allow_t *a = calloc(1, sizeof *a);
    if (!a)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    const char *p = text ? text : "";
    while (*p == ' ' || *p == '\t')
        p++;
    int rc = 0;
    while (*p && !rc) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char entry[MAX_HOST + 2];
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len == 0)
            rc = rp_error_set(err, RP_EINVAL, RP_C_WEBHOOK_DEST,
                              "%s: \"%.200s\" has an empty part (entries joined by commas)",
                              RP_WEBHOOK_ALLOW_SETTING, text);
        else if (len > MAX_HOST)
            rc = rp_error_set(err, RP_EINVAL, RP_C_WEBHOOK_DEST,
                              "%s: an entry is longer than %d characters",
                              RP_WEBHOOK_ALLOW_SETTING, MAX_HOST);
        else {
            memcpy(entry, p, len);
            entry[len] = '\0';
            rc = add_entry(a, entry, err);
        }
        if (!end)
            break;
        p = end + 1;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p && !rc)
            rc = rp_error_set(err, RP_EINVAL, RP_C_WEBHOOK_DEST,
                              "%s: \"%.200s\" ends with a comma", RP_WEBHOOK_ALLOW_SETTING,
                              text);
    }
    if (rc) {
        rp_webhook_allow_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

int rp_webhook_allow_json(const json_t *value, rp_webhook_allow_t **out, rp_error_t *err)
{
    *out = NULL;
    if (!value || json_is_null(value))
        return rp_webhook_allow_parse("", out, err);
    if (json_is_string(value))
        return rp_webhook_allow_parse(json_string_value(value), out, err);
    if (!json_is_array(value))
        return rp_error_set(err, RP_EINVAL, RP_C_WEBHOOK_DEST,
                            "%s is a text of entries joined by commas, or an array of them",
                            RP_WEBHOOK_ALLOW_SETTING);
    /* An array is its entries joined by commas. */
    size_t cap = 1, i;
    const json_t *v;
    json_array_foreach(value, i, v) {
        if (!json_is_string(v))
            return rp_error_set(err, RP_EINVAL, RP_C_WEBHOOK_DEST,
                                "%s: item %zu of the array is not a text", RP_WEBHOOK_ALLOW_SETTING,
                                i + 1);
        cap += strlen(json_string_value(v)) + 1;
    }
    char *text = calloc(1, cap);
    if (!text)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    json_array_foreach(value, i, v) {
        if (i)
            strcat(text, ",");
        strcat(text, json_string_value(v));
    }
    int rc = rp_webhook_allow_parse(text, out, err);
    free(text);
    return rc;
}

int rp_webhook_allow_load(rp_store_t *s, const char *override, rp_webhook_allow_t **out,
                          rp_error_t *err)
{
    *out = NULL;
    if (override)
        return rp_webhook_allow_parse(override, out, err);
    json_t *v = NULL;
    rp_error_t e2 = {0};
    int rc = rp_config_get(s, RP_WEBHOOK_ALLOW_SETTING, &v, &e2);
    if (rc && rc != RP_ENOTFOUND) {
        if (err)
            *err = e2;
        return rc;
    }
    rc = rp_webhook_allow_json(v, out, err);
    json_decref(v);
    return rc;
}

bool rp_webhook_allow_host(const rp_webhook_allow_t *a, const char *host)
{
    if (!a || !host)
        return false;
    size_t len = strlen(host);
    if (len > 1 && host[len - 1] == '.')
        len--;
    for (int i = 0; i < a->nhosts; i++)
        if (strlen(a->hosts[i]) == len && strncasecmp(a->hosts[i], host, len) == 0)
            return true;
    return false;
}

bool rp_webhook_allow_addr(const rp_webhook_allow_t *a, const struct sockaddr *sa)
{
    if (!a || !sa)
        return false;
    uint8_t v4[4], v6[16];
    bool has4 = false, has6 = false;
    if (sa->sa_family == AF_INET) {
        memcpy(v4, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        has4 = true;
    } else if (sa->sa_family == AF_INET6) {
        memcpy(v6, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        has6 = true;
        uint32_t inner;
        /* An IPv6 form of an IPv4 address goes where that address goes. */
        if (v6_embedded(v6, &inner)) {
            uint32_t n = htonl(inner);
            memcpy(v4, &n, 4);
            has4 = true;
        }
    }
    for (int i = 0; i < a->nnets; i++) {
        const net_t *n = &a->nets[i];
        if ((n->family == AF_INET && has4 && prefix_match(v4, n->addr, n->bits)) ||
            (n->family == AF_INET6 && has6 && prefix_match(v6, n->addr, n->bits)))
            return true;
    }
    return false;
}

bool rp_webhook_dest_refused(const rp_webhook_allow_t *a, const struct sockaddr *sa,
                             char *why, size_t cap)
{
    char cls[96];
    if (!rp_webhook_addr_denied(sa, cls, sizeof cls) || rp_webhook_allow_addr(a, sa))
        return false;
    char text[INET6_ADDRSTRLEN] = "?";
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, text, sizeof text);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, text, sizeof text);
    snprintf(why, cap, "%s (%s)", text, cls);
    return true;
}

/* ---- the check of a URL's destination -------------------------------------------------- */

/* The host of @p url as libcurl reads it (IPv4 in any notation made dotted, IPv6 without its
 * brackets) into @p out. */
static int url_host(const char *url, char *out, size_t cap, rp_error_t *err)
{
    CURLU *u = curl_url();
    char *host = NULL;
    if (!u)
        return rp_error_set(err, RP_ENOMEM, 0, "out of memory");
    int rc = 0;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host ||
        strlen(host) >= cap) {
        char shown[300];
        rp_webhook_url_redact(url, shown, sizeof shown);
        rc = rp_error_set(err, RP_EINVAL, RP_C_WEBHOOK, "the webhook URL \"%.200s\" names no "
                          "host", shown);
    } else {
        size_t len = strlen(host);
        if (host[0] == '[' && host[len - 1] == ']') {
            memcpy(out, host + 1, len - 2);
            out[len - 2] = '\0';
        } else {
            memcpy(out, host, len + 1);
        }
    }
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

int rp_webhook_url_host(const char *url, char *out, size_t cap, rp_error_t *err)
{
    out[0] = '\0';
    return url_host(url, out, cap, err);
}

int rp_webhook_check_dest(const char *url, const rp_webhook_allow_t *allow, rp_error_t *err)
{
    char host[MAX_HOST + 8];
    int rc = url_host(url, host, sizeof host, err);
    if (rc || rp_webhook_allow_host(allow, host))
        return rc;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    /* A name that does not resolve now is judged when it is delivered to, address by address. */
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
        return 0;
    char refused[300] = "", first[INET6_ADDRSTRLEN + 8] = "";
    int n_refused = 0;
    bool some_ok = false;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        char why[160];
        if (!rp_webhook_dest_refused(allow, ai->ai_addr, why, sizeof why)) {
            some_ok = true;
            break;
        }
        if (n_refused == 0) {
            snprintf(first, sizeof first, "%.*s%s", (int)strcspn(why, " "), why,
                     ai->ai_family == AF_INET ? "/32" : "/128");
        }
        if (n_refused < 3 && !strstr(refused, why)) {
            size_t used = strlen(refused);
            snprintf(refused + used, sizeof refused - used, "%s%s", used ? ", " : "", why);
            n_refused++;
        }
    }
    freeaddrinfo(res);
    if (some_ok)
        return 0;
    unsigned char bin[16];
    if (inet_pton(AF_INET, host, bin) == 1 || inet_pton(AF_INET6, host, bin) == 1)
        return rp_error_set(err, RP_EPERM, RP_C_WEBHOOK_DEST,
                            "webhooks do not deliver to %s unless the setting %s allows it "
                            "(rapport config set %s %s)",
                            refused, RP_WEBHOOK_ALLOW_SETTING, RP_WEBHOOK_ALLOW_SETTING, first);
    return rp_error_set(err, RP_EPERM, RP_C_WEBHOOK_DEST,
                        "the webhook host %s leads only where webhooks do not deliver: %s; the "
                        "setting %s can allow the host or its addresses (rapport config set %s "
                        "%s)",
                        host, refused, RP_WEBHOOK_ALLOW_SETTING, RP_WEBHOOK_ALLOW_SETTING, first);
}

/* ---- showing a URL ------------------------------------------------------------------- */

void rp_webhook_url_redact(const char *url, char *out, size_t cap)
{
    if (!cap)
        return;
    if (!url) {
        out[0] = '\0';
        return;
    }
    const char *auth = strstr(url, "://");
    auth = auth ? auth + 3 : url;
    size_t alen = strcspn(auth, "/?#");
    /* The last "@" of the authority: whatever stands before it is a user or a password. */
    const char *at = NULL;
    for (const char *p = auth; p < auth + alen; p++)
        if (*p == '@')
            at = p;
    if (!at)
        snprintf(out, cap, "%s", url);
    else
        snprintf(out, cap, "%.*s***%s", (int)(auth - url), url, at);
}
