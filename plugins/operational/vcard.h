/*
 * vcard.h — reading and writing vCards (RFC 2426 version 3.0, RFC 6350 version 4.0): small and
 * ours, so it has a fuzz target (tests/fuzz/fuzz_vcard.c).
 */
#ifndef OPERATIONAL_VCARD_H
#define OPERATIONAL_VCARD_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

/**
 * Called for each card of a text: @p card holds what the card says in the field names of a
 * person record (first_name, last_name, email, phone, mobile, title, company, birthday,
 * address, city, country, website, note), each present only when the card has it; @p line is
 * the line of its BEGIN:VCARD. Return non-zero to stop.
 */
typedef int (*op_vcard_fn)(void *ud, json_t *card, long line);

/**
 * Reads every card of the @p len bytes at @p text (unfolded, unescaped, any line ending).
 * Returns 0, or -1 with @p why (line and reason) when the text is not vCard: a card without
 * END, a line without a colon, a version other than 2.1, 3.0 or 4.0.
 */
int op_vcard_parse(const char *text, size_t len, op_vcard_fn fn, void *ud, char *why,
                   size_t wlen);

/** Writes @p rec (a person record, as above) as one vCard 4.0 with UID @p uid. */
void op_vcard_write(FILE *f, json_t *rec, const char *uid);

#endif
