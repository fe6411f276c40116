/*
 * tables.c — the auth room's tables (users and API tokens), registered with the database room.
 * auth.c (users, tokens) and the access checks (which read a user's team) both need them, so each
 * refers to rp__auth_schema and linking either links this file.
 */
#include "rapport/db.h"

/* Users and API tokens: a password only as its argon2id hash, a token only as its BLAKE2b
 * hash. Never edit a released step; append one. */
static const rp_db_step_t auth_steps[] = {
    {1,
     "CREATE TABLE rp_users(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,"
     " role TEXT NOT NULL, team TEXT, password_hash TEXT NOT NULL,"
     " disabled INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, created_by TEXT NOT NULL);"
     "CREATE TABLE rp_tokens(id INTEGER PRIMARY KEY AUTOINCREMENT,"
     " user_id INTEGER NOT NULL REFERENCES rp_users(id), hash TEXT NOT NULL UNIQUE,"
     " prefix TEXT NOT NULL, role TEXT, created_at TEXT NOT NULL, expires_at INTEGER,"
     " revoked_at TEXT, last_used_at INTEGER);",
     NULL},
    /* A user's email address: where the engine writes to them (a daily digest, a mention). */
    {2, "ALTER TABLE rp_users ADD COLUMN email TEXT;", NULL},
};
static const int auth_legacy[] = {0, 0, 1, 1, 2};
const rp_db_schema_t rp__auth_schema = {"auth", auth_steps, 2, auth_legacy, 5};
RP_DB_SCHEMA(rp__auth_schema)
