/*
 * test_lua_rules.c — scripts at work: before-hooks that veto and edit (and what an edit reads
 * back), handlers fed events as the clock moves, jobs with keys, reschedules and cancels,
 * schedules, a workflow across a restart, dry runs, a failed chunk that registers nothing, and
 * values that cross between Lua and the store exactly.
 */
#include "lua_helpers.h"

/* ---- hooks and handlers ------------------------------------------------------------------ */

static const char *rules_lua =
    "crm.before('contact.create', function(r)\n"
    "  if r.last_name == 'Nobody' then\n"
    "    error('contacts need a real last name')\n"
    "  end\n"
    "  if r.email then r.email = string.lower(r.email) end\n"
    "  r.first_name = r.first_name or '(unknown)'\n"
    "end)\n"
    "crm.before('account.create', function(r)\n"
    "  return {name = string.upper(r.name)}\n"
    "end)\n"
    "crm.before('contact.update', function(patch, old, info)\n"
    "  if patch.stage == 'won' and old.stage == 'new' then\n"
    "    error({reason = 'qualify first', action = info.action})\n"
    "  end\n"
    "end)\n";

static void test_before_hooks_veto_and_edit(void **state)
{
    (void)state;
    world_t w;
    world_open(&w, &(rp_lua_opts_t){.sandbox = true, .name = "rules.lua"});
    eval_do(w.l, "rules.lua", rules_lua);
    rp_lua_t *app = new_state(&w, &(rp_lua_opts_t){.name = "app"});

    /* Veto: nothing is stored, and the caller hears the hook's own words and line. */
    const char *m = eval_fail(app, "app.lua",
                              "return crm.create('contact', {last_name = 'Nobody'})");
    assert_contains(m, "RP-E1401");
    assert_contains(m, "rules.lua:3: contacts need a real last name");
    assert_contains(m, "app.lua:1: ");
    assert_int_equal(count_of(w.s, "contact"), 0);
    rp_error_t err = {0};
    assert_int_equal(try_create(w.s, "contact", "{\"last_name\": \"Nobody\"}", &err), RP_EVETO);
    assert_contains(err.msg, "rules.lua:3: contacts need a real last name");
    assert_int_equal(count_of(w.s, "contact"), 0);

    /* Edits: a changed field in the table given, or a new table returned. */
    json_t *res = eval_ok(app, "app.lua", "local c = crm.create('contact', {last_name = "
                                          "'Lovelace', email = 'ADA@Example.COM'})\n"
                                          "return c.email, c.id");
    assert_string_equal(json_string_value(json_array_get(res, 0)), "ada@example.com");
    int64_t id = json_integer_value(json_array_get(res, 1));
    json_decref(res);
    assert_string_equal(field_of(w.s, "contact", id, "email"), "\"ada@example.com\"");
    /* The store lower-cases emails itself; a field it leaves alone shows the hook's edit. */
    assert_string_equal(field_of(w.s, "contact", id, "first_name"), "\"(unknown)\"");
    assert_string_equal(eval1(app, "return crm.create('account', {name = 'acme'}).name"), "ACME");

    /* An update hook sees the patch, the record before, and what is done; a table veto. */
    char code[128];
    snprintf(code, sizeof code, "crm.update('contact', %lld, {stage = 'won'})", (long long)id);
    m = eval_fail(app, "app.lua", code);
    assert_contains(m, "rules.lua:13: error object");
    assert_contains(m, "\"reason\":\"qualify first\"");
    assert_contains(m, "\"action\":\"update\"");
    assert_string_equal(field_of(w.s, "contact", id, "stage"), "\"new\"");
    rp_lua_free(app);
    world_close(&w);
}

static void test_on_handlers_get_events_as_the_clock_moves(void **state)
{
    (void)state;
    world_t w;
    world_open(&w, &(rp_lua_opts_t){.name = "app"});
    assert_string_equal(eval1(w.l, "seen = {}\n"
                                   "return crm.on('contact.created', function(ev)\n"
                                   "  seen[#seen + 1] = ev.changes.last_name[2] .. '#' .. ev.id\n"
                                   "end)"),
                        "app:contact.created");
    eval_do(w.l, "app.lua", "crm.create('contact', {last_name = 'A'})\n"
                            "crm.create('contact', {last_name = 'B'})\n"
                            "crm.create('account', {name = 'not a contact'})\n");
    assert_string_equal(eval1(w.l, "return #seen"), "0");
    assert_string_equal(eval1(w.l, "crm.clock.advance('1s') return seen"), "[\"A#1\",\"B#2\"]");
    assert_string_equal(eval1(w.l, "return crm.now()"), "2026-01-01T00:00:01.000Z");

    /* A failing handler is retried by the event log's rules; the failure is logged. */
    eval_do(w.l, "flaky.lua",
            "tries = 0\n"
            "crm.on('account.created', function(ev)\n"
            "  tries = tries + 1\n"
            "  if tries == 1 then error('not yet') end\n"
            "end, {name = 'flaky', from_start = true})\n");
    eval_do(w.l, "app.lua", "crm.clock.advance('1ms')");
    assert_string_equal(eval1(w.l, "return tries"), "1");
    assert_contains(last_log, "flaky.lua:4: not yet");
    assert_string_equal(eval1(w.l, "crm.clock.advance('10s') return tries"), "2");
    world_close(&w);
}

static void test_jobs_after_key_reschedule_cancel(void **state)
{
    (void)state;
    world_t w;
    world_open(&w, &(rp_lua_opts_t){.name = "app"});
    eval_do(w.l, "jobs.lua",
            "ran = {}\n"
            "crm.job('remind', function(p, job)\n"
            "  ran[#ran + 1] = p.n .. '@' .. crm.now() .. (job.key and (' ' .. job.key) or '')\n"
            "end)\n");
    eval_do(w.l, "jobs.lua", "crm.after('1h', 'remind', {n = 1}, {key = 'k'})\n"
                             "crm.after('3h', 'remind', {n = 2}, {key = 'k'})\n"
                             "crm.after('30m', 'remind', {n = 3})\n");
    json_t *jobs = NULL;
    rp_error_t err = {0};
    assert_int_equal(rp_jobs_list(w.s, "pending", &jobs, &err), 0);
    assert_int_equal(json_array_size(jobs), 2); /* the keyed job was moved, not doubled */
    json_decref(jobs);
    assert_string_equal(eval1(w.l, "crm.clock.advance('2h') return ran"),
                        "[\"3@2026-01-01T00:30:00.000Z\"]");
    assert_string_equal(eval1(w.l, "crm.clock.advance('1h') return ran[2]"),
                        "2@2026-01-01T03:00:00.000Z k");
    assert_string_equal(eval1(w.l, "crm.after('1h', 'remind', {n = 4}, {key = 'k2'})\n"
                                   "return crm.cancel('k2')"),
                        "true");
    assert_string_equal(eval1(w.l, "return crm.cancel('k2')"), "false");
    assert_string_equal(eval1(w.l, "crm.clock.advance('1d') return #ran"), "2");
    assert_contains(eval_fail(w.l, "jobs.lua", "crm.after('soon', 'remind', {})"), "jobs.lua:1: ");
    world_close(&w);
}

static void test_every(void **state)
{
    (void)state;
    world_t w;
    world_open(&w, &(rp_lua_opts_t){.name = "app"});
    eval_do(w.l, "cron.lua",
            "ticks = {}\n"
            "crm.job('tick', function(p) ticks[#ticks + 1] = crm.now():sub(12, 16) end)\n"
            "crm.every('0 * * * *', 'tick')\n"
            "crm.every('30 9 * * 1-5', 'tick', {name = 'weekday_morning', tz = 'Europe/Paris',"
            " payload = {why = 'standup'}})\n");
    json_t *sch = NULL;
    rp_error_t err = {0};
    assert_int_equal(rp_schedules_list(w.s, &sch, &err), 0);
    assert_int_equal(json_array_size(sch), 2);
    json_decref(sch);
    assert_string_equal(eval1(w.l, "crm.clock.advance('3h') return ticks"),
                        "[\"01:00\",\"02:00\",\"03:00\"]");
    assert_contains(eval_fail(w.l, "cron.lua", "crm.every('61 * * * *', 'tick')"), "cron.lua:1: ");
    world_close(&w);
}

static const char *workflow_lua =
    "crm.workflow('onboard', {\n"
    "  welcome = function(state)\n"
    "    crm.create('account', {name = 'welcome ' .. state.who})\n"
    "    state.steps = 1\n"
    "    return 'check', '3d', state\n"
    "  end,\n"
    "  check = function(state)\n"
    "    state.steps = state.steps + 1\n"
    "    crm.create('account', {name = 'check ' .. state.who .. ' ' .. state.steps})\n"
    "    return 'call', '3d', state\n"
    "  end,\n"
    "  call = function(state)\n"
    "    crm.create('account', {name = 'call ' .. state.who .. ' ' .. (state.steps + 1)})\n"
    "  end,\n"
    "})\n";

static void test_workflow_resumes_after_a_restart(void **state)
{
    (void)state;
    char dir[] = "/tmp/rp_test_lua_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/crm.db", dir);
    rp_error_t err = {0};
    world_t w = {0};
    assert_int_equal(rp_store_open(path, NULL, &w.s, &err), 0);
    define(w.s, "account", account_spec);
    w.e = virtual_engine(w.s, T0);
    w.l = new_state(&w, &(rp_lua_opts_t){.sandbox = true, .name = "onboard.lua"});
    eval_do(w.l, "onboard.lua", workflow_lua);
    eval_do(w.l, "start.lua",
            "crm.workflow.start('onboard', 'welcome', {who = 'ada'}, {key = 'onboard:ada'})\n"
            "crm.workflow.start('onboard', 'welcome', {who = 'bob'}, {key = 'onboard:bob'})\n");
    assert_int_equal(rp_sched_advance(w.e, 1000, &err), 0);
    assert_int_equal(count_of(w.s, "account"), 2);
    assert_int_equal(rp_sched_advance(w.e, 3 * DAY, &err), 0);
    assert_int_equal(count_of(w.s, "account"), 4);
    /* Bob's third step is cancelled by the key his workflow was started with. */
    assert_string_equal(eval1(w.l, "return crm.cancel('onboard:bob')"), "true");

    /* What waits is a job in the database, with the state it carries. */
    json_t *jobs = NULL;
    assert_int_equal(rp_jobs_list(w.s, "pending", &jobs, &err), 0);
    assert_int_equal(json_array_size(jobs), 1);
    json_t *j = json_array_get(jobs, 0);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "onboard.call");
    json_t *st = json_object_get(json_object_get(j, "payload"), "state");
    assert_string_equal(json_string_value(json_object_get(st, "who")), "ada");
    assert_int_equal(json_integer_value(json_object_get(st, "steps")), 2);
    json_decref(jobs);
    world_close(&w);

    /* A new process: the same database, a fresh engine and the workflow's script reloaded. */
    assert_int_equal(rp_store_open(path, NULL, &w.s, &err), 0);
    w.e = virtual_engine(w.s, T0 + 3 * DAY + 1000);
    w.l = new_state(&w, &(rp_lua_opts_t){.sandbox = true, .name = "onboard.lua"});
    eval_do(w.l, "onboard.lua", workflow_lua);
    assert_int_equal(rp_sched_advance(w.e, 3 * DAY, &err), 0);
    json_t *res = eval_ok(w.l, "check.lua",
                          "local names = {}\n"
                          "for _, a in ipairs(crm.find('account', {order = 'id'})) do\n"
                          "  names[#names + 1] = a.name\n"
                          "end\n"
                          "return table.concat(names, ', ')");
    assert_string_equal(json_string_value(json_array_get(res, 0)),
                        "welcome ada, welcome bob, check ada 2, check bob 2, call ada 3");
    json_decref(res);
    assert_int_equal(rp_jobs_list(w.s, NULL, &jobs, &err), 0);
    assert_int_equal(json_array_size(jobs), 0);
    json_decref(jobs);
    /* A step that names no such step fails loudly. */
    eval_do(w.l, "bad.lua", "crm.workflow('broken', {first = function() return 'nowhere' end})\n"
                            "crm.workflow.start('broken', 'first', {})\n");
    assert_int_equal(rp_sched_advance(w.e, 1000, &err), 0);
    assert_contains(last_log, "no step nowhere");
    world_close(&w);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- dry runs and registrations ----------------------------------------------------------- */

static void test_dry_run(void **state)
{
    (void)state;
    world_t w;
    world_open(&w, &(rp_lua_opts_t){.name = "app"});
    create(w.s, "account", "{\"name\": \"Existing\"}");
    /* A job due after the one the dry run schedules: ids follow due time, so the dry run's
     * job has the smaller id, and is still told apart as new. */
    rp_error_t err = {0};
    assert_int_equal(rp_jobs_schedule(w.s, NULL, "later", NULL,
                                      rp_store_now(w.s) + 30LL * 86400000, NULL, NULL, &err), 0);
    int64_t seq0 = rp_events_last_seq(w.s);
    json_t *res = eval_ok(w.l, "dry.lua",
                          "return crm.dry_run(function()\n"
                          "  local a = crm.create('account', {name = 'Acme'})\n"
                          "  crm.update('account', a.id, {name = 'Acme Ltd'})\n"
                          "  crm.delete('account', 1)\n"
                          "  crm.emit('account.reviewed', {by = 'me'},\n"
                          "           {entity = 'account', id = a.id})\n"
                          "  crm.after('1d', 'follow_up', {account = a.id})\n"
                          "  return a.id\n"
                          "end)\n");
    assert_int_equal(json_integer_value(json_array_get(res, 0)), 2);
    json_t *ch = json_array_get(res, 1);
    json_t *recs = json_object_get(ch, "records");
    assert_int_equal(json_array_size(recs), 3);
    json_t *r0 = json_array_get(recs, 0), *r1 = json_array_get(recs, 1);
    assert_string_equal(json_string_value(json_object_get(r0, "action")), "created");
    assert_string_equal(json_string_value(json_object_get(r0, "entity")), "account");
    assert_string_equal(json_string_value(json_object_get(r1, "action")), "updated");
    char *d = json_dumps(json_object_get(r1, "changes"), JSON_COMPACT);
    assert_string_equal(d, "{\"name\":[\"Acme\",\"Acme Ltd\"]}");
    free(d);
    assert_string_equal(json_string_value(json_object_get(json_array_get(recs, 2), "action")),
                        "deleted");
    assert_int_equal(json_array_size(json_object_get(ch, "events")), 4);
    json_t *jobs = json_object_get(ch, "jobs");
    assert_int_equal(json_array_size(jobs), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(jobs, 0), "name")),
                        "follow_up");
    assert_int_equal(json_array_size(json_object_get(ch, "cancelled_jobs")), 0);
    json_decref(res);

    /* Nothing stays: no record, no event, no job. */
    assert_int_equal(count_of(w.s, "account"), 1);
    assert_string_equal(field_of(w.s, "account", 1, "deleted_at"), "null");
    assert_int_equal(rp_events_last_seq(w.s), seq0);
    assert_int_equal(rp_jobs_list(w.s, NULL, &jobs, &err), 0);
    assert_int_equal(json_array_size(jobs), 1); /* the one from before */
    json_decref(jobs);

    /* A dry run whose function fails gives the error and leaves nothing either. */
    const char *m = eval_fail(w.l, "dry.lua", "crm.dry_run(function()\n"
                                              "  crm.create('account', {name = 'Gone'})\n"
                                              "  error('changed my mind')\n"
                                              "end)\n");
    assert_contains(m, "dry.lua:3: changed my mind");
    assert_int_equal(count_of(w.s, "account"), 1);
    assert_int_equal(rp_store_txn_depth(w.s), 0);
    world_close(&w);
}

static void test_failed_chunk_registers_nothing(void **state)
{
    (void)state;
    world_t w;
    world_open(&w, &(rp_lua_opts_t){.sandbox = true, .name = "rules.lua"});
    const char *m = eval_fail(w.l, "rules.lua",
                              "crm.before('account.create', function() error('hook ran') end)\n"
                              "crm.on('account.created', function() error('handler ran') end,"
                              " {name = 'never'})\n"
                              "crm.job('never.job', function() error('job ran') end)\n"
                              "crm.every('0 * * * *', 'never.job', {name = 'never_schedule'})\n"
                              "error('late failure')\n");
    assert_contains(m, "rules.lua:5: late failure");
    create(w.s, "account", "{\"name\": \"Unhooked\"}");
    rp_error_t err = {0};
    assert_int_equal(rp_sched_advance(w.e, 2 * 3600000, &err), 0);
    int64_t seq = 0;
    assert_int_equal(rp_events_checkpoint(w.s, "never", &seq, &err), RP_ENOTFOUND);
    json_t *list = NULL;
    assert_int_equal(rp_schedules_list(w.s, &list, &err), 0);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    assert_int_equal(rp_jobs_list(w.s, NULL, &list, &err), 0);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);

    /* A registration the engine refuses fails its chunk, and later chunks still register. */
    m = eval_fail(w.l, "rules.lua", "crm.on('account.created', function() end,"
                                    " {name = 'Not A Name'})\n");
    assert_contains(m, "Not A Name");
    eval_do(w.l, "rules.lua",
            "n = 0\n"
            "crm.on('account.created', function() n = n + 1 end, {name = 'ok'})\n");
    /* Outside a chunk (a function the engine calls) a registration applies at once; one that
     * is refused must not hold back the ones after it. */
    rp_lua_t *app = new_state(&w, &(rp_lua_opts_t){.name = "app"});
    eval_do(app, "app.lua",
            "function bad() crm.on('x.y', function() end, {name = 'Bad Name'}) end\n"
            "function good()\n"
            "  crm.before('account.create', function(r) r.name = r.name .. '!' end)\n"
            "end\n");
    lua_getglobal(app->L, "bad");
    assert_int_equal(rp__lua_pcall(app, 0, 0, &err), RP_EINVAL);
    assert_contains(err.msg, "Bad Name");
    lua_getglobal(app->L, "good");
    assert_int_equal(rp__lua_pcall(app, 0, 0, &err), 0);
    create(w.s, "account", "{\"name\": \"Counted\"}");
    assert_string_equal(field_of(w.s, "account", 2, "name"), "\"Counted!\"");
    rp_lua_free(app);
    assert_int_equal(rp_sched_advance(w.e, 1000, &err), 0);
    assert_string_equal(eval1(w.l, "return n"), "1");
    world_close(&w);
}

static void test_values_cross_exactly(void **state)
{
    (void)state;
    world_t w;
    world_open(&w, &(rp_lua_opts_t){.sandbox = true, .name = "rules.lua"});
    json_t *res = eval_ok(w.l, "values.lua",
                          "local c = crm.create('contact', {last_name = 'Ada', balance = '12.5',"
                          " age = 36, score = 0.5, vip = true, birthday = '1815-12-10',"
                          " last_seen = '2026-01-01T10:00:00+02:00',"
                          " extra = {tags = {'a', 'b'}}})\n"
                          "return math.type(c.id), math.type(c.version), c.balance, c.birthday,"
                          " c.last_seen, c.first_name == nil, math.type(c.age), c.vip,"
                          " c.extra.tags[2], c.created_at, c.score\n");
    const char *want[] = {"\"integer\"", "\"integer\"", "\"12.50\"", "\"1815-12-10\"",
                          "\"2026-01-01T08:00:00.000Z\"", "true", "\"integer\"", "true", "\"b\"",
                          "\"2026-01-01T00:00:00.000Z\"", "0.5"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        char *got = json_dumps(json_array_get(res, i), JSON_ENCODE_ANY | JSON_COMPACT);
        if (strcmp(got, want[i]) != 0)
            fail_msg("value %zu: expected %s, got %s", i + 1, want[i], got);
        free(got);
    }
    json_decref(res);
    /* A float that is not exactly a decimal of the field's scale is refused, not rounded. */
    assert_contains(eval_fail(w.l, "values.lua",
                              "crm.create('contact', {last_name = 'X', balance = 3.255})"),
                    "RP-E1204");
    assert_string_equal(
        eval1(w.l, "return crm.json.encode(crm.json.decode('{\"a\":[1,2.5,\"x\",true]}'))"),
        "{\"a\":[1,2.5,\"x\",true]}");
    assert_contains(eval_fail(w.l, "values.lua", "crm.create('contact', {last_name = print})"),
                    "must be plain data");
    /* A key jansson cannot hold is refused with the reason, never silently dropped. */
    assert_contains(eval_fail(w.l, "values.lua",
                              "crm.create('contact', {last_name = 'X', ['\\xff'] = 1})"),
                    "not valid UTF-8");
    assert_contains(eval_fail(w.l, "values.lua",
                              "crm.create('contact', {last_name = 'X', ['a\\0b'] = 1})"),
                    "NUL byte");
    world_close(&w);
}

/* What a before-hook leaves in the record is what is stored: fields it changed, added or set
 * to nil, and the ones it did not touch (kept without a second conversion). */
static void test_hook_edits_read_back(void **state)
{
    (void)state;
    world_t w;
    world_open(&w, &(rp_lua_opts_t){.sandbox = true, .name = "rules.lua"});
    eval_do(w.l, "rules.lua",
            "crm.before('contact.create', function(r)\n"
            "  r.first_name = nil\n"
            "  r.last_name = r.last_name:upper()\n"
            "  r.age = 40\n"
            "end)\n");
    json_t *res = eval_ok(w.l, "hook.lua",
                          "local c = crm.create('contact', {first_name = 'Ada',"
                          " last_name = 'Lovelace', balance = '1.5'})\n"
                          "local g = crm.get('contact', c.id)\n"
                          "return g.first_name == nil, g.last_name, g.age, g.balance\n");
    char *got = json_dumps(res, JSON_COMPACT);
    assert_string_equal(got, "[true,\"LOVELACE\",40,\"1.50\"]");
    free(got);
    json_decref(res);
    /* The old record and the context reach the hooks that name them, or take `...`. */
    eval_do(w.l, "rules.lua",
            "seen = {}\n"
            "crm.before('contact.update', function(r, old, ctx)\n"
            "  seen[#seen + 1] = ctx.action .. ' ' .. ctx.entity .. ' ' .. ctx.id .. ' ' .. ctx.actor\n"
            "    .. ' ' .. old.last_name\n"
            "end)\n"
            "crm.before('contact.update', function(...)\n"
            "  seen[#seen + 1] = select('#', ...) .. ' ' .. (select(2, ...)).last_name\n"
            "end)\n"
            "crm.before('contact.update', function(r, old) seen[#seen + 1] = old.last_name end)\n");
    eval_do(w.l, "hook.lua", "crm.update('contact', 1, {age = 41})");
    assert_string_equal(eval1(w.l, "return table.concat(seen, '|')"),
                        "update contact 1 script:rules.lua LOVELACE|3 LOVELACE|LOVELACE");
    /* A hook that leaves something that is not data vetoes the write, naming what it left. */
    eval_do(w.l, "rules.lua",
            "crm.before('contact.create', function(r) r.age = print end)\n");
    assert_contains(eval_fail(w.l, "hook.lua", "crm.create('contact', {last_name = 'B'})"),
                    "left the record as");
    assert_string_equal(eval1(w.l, "return crm.count('contact')"), "1");
    world_close(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_before_hooks_veto_and_edit),
        cmocka_unit_test(test_on_handlers_get_events_as_the_clock_moves),
        cmocka_unit_test(test_jobs_after_key_reschedule_cancel),
        cmocka_unit_test(test_every),
        cmocka_unit_test(test_workflow_resumes_after_a_restart),
        cmocka_unit_test(test_dry_run),
        cmocka_unit_test(test_failed_chunk_registers_nothing),
        cmocka_unit_test(test_values_cross_exactly),
        cmocka_unit_test(test_hook_edits_read_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
