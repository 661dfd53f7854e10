/* ctl_csv.c - the RFC 4180 reader of ctl_csv.h. Pure; owns only each
 * record's field storage. */
#include "ctl_csv.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void omr_csv_init(omr_csv_t *r, const char *buf, size_t len)
{
	r->buf = buf;
	r->len = buf ? len : 0;
	r->pos = 0;
	r->line = 1;
	/* Excel and LibreOffice write a BOM in front of "CSV UTF-8". */
	if (r->len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
		r->pos = 3;
}

void omr_csv_record_init(omr_csv_record_t *rec)
{
	memset(rec, 0, sizeof(*rec));
}

void omr_csv_record_cleanup(omr_csv_record_t *rec)
{
	free(rec->data);
	memset(rec, 0, sizeof(*rec));
}

const char *omr_csv_field(const omr_csv_record_t *rec, size_t i)
{
	return i < rec->nfields ? rec->data + rec->off[i] : NULL;
}

static int put(omr_csv_record_t *rec, char c)
{
	/* Field bytes so far: all but the terminators of the finished fields. */
	if (c != '\0' && rec->used - (rec->nfields - 1) >= OMR_CSV_MAX_RECORD)
		return -EMSGSIZE;
	if (rec->used == rec->cap) {
		if (rec->cap == OMR_CSV_MAX_RECORD + OMR_CSV_MAX_FIELDS)
			return -EMSGSIZE;
		size_t ncap = rec->cap ? rec->cap * 2 : 256;
		if (ncap > OMR_CSV_MAX_RECORD + OMR_CSV_MAX_FIELDS)
			ncap = OMR_CSV_MAX_RECORD + OMR_CSV_MAX_FIELDS;
		char *n = realloc(rec->data, ncap);
		if (!n)
			return -ENOMEM;
		rec->data = n;
		rec->cap = ncap;
	}
	rec->data[rec->used++] = c;
	return 0;
}

/* Moves past the end of the current physical line (error recovery). */
static void skip_line(omr_csv_t *r)
{
	while (r->pos < r->len && r->buf[r->pos] != '\n')
		r->pos++;
	if (r->pos < r->len) {
		r->pos++;
		r->line++;
	}
}

/* At a record separator: true, consuming it, for LF or CRLF. */
static bool at_eol(omr_csv_t *r)
{
	if (r->pos < r->len && r->buf[r->pos] == '\n') {
		r->pos++;
		r->line++;
		return true;
	}
	if (r->pos + 1 < r->len && r->buf[r->pos] == '\r' && r->buf[r->pos + 1] == '\n') {
		r->pos += 2;
		r->line++;
		return true;
	}
	return false;
}

/* Reads a quoted field; r->pos is past the opening quote. */
static int quoted(omr_csv_t *r, omr_csv_record_t *rec, const char **why, size_t *errline)
{
	size_t opened = r->line;
	for (;;) {
		if (r->pos >= r->len) {
			*why = "unterminated quoted field";
			*errline = opened;
			return -EINVAL;
		}
		char c = r->buf[r->pos];
		if (c == '"') {
			if (r->pos + 1 < r->len && r->buf[r->pos + 1] == '"') {
				r->pos += 2;
			} else {
				r->pos++;
				return 0;
			}
		} else {
			r->pos++;
			if (c == '\0') {
				*why = "NUL byte";
				*errline = r->line;
				return -EINVAL;
			}
			if (c == '\n')
				r->line++;
		}
		int rc = put(rec, c);
		if (rc != 0) {
			*why = "record too long";
			*errline = opened;
			return rc;
		}
	}
}

/* Reads an unquoted field up to (not past) ',', a line break or the end. */
static int unquoted(omr_csv_t *r, omr_csv_record_t *rec, const char **why, size_t *errline)
{
	while (r->pos < r->len) {
		char c = r->buf[r->pos];
		if (c == ',' || c == '\n' ||
		    (c == '\r' && r->pos + 1 < r->len && r->buf[r->pos + 1] == '\n'))
			return 0;
		*errline = r->line;
		if (c == '"') {
			*why = "quote inside an unquoted field (quote the whole field and double "
			       "the quote)";
			return -EINVAL;
		}
		if (c == '\r') {
			*why = "carriage return without line feed";
			return -EINVAL;
		}
		if (c == '\0') {
			*why = "NUL byte";
			return -EINVAL;
		}
		int rc = put(rec, c);
		if (rc != 0) {
			*why = "record too long";
			return rc;
		}
		r->pos++;
	}
	return 0;
}

int omr_csv_next(omr_csv_t *r, omr_csv_record_t *rec, const char **why, size_t *errline)
{
	const char *why_ignored;
	size_t line_ignored;
	if (!why)
		why = &why_ignored;
	if (!errline)
		errline = &line_ignored;
	while (at_eol(r))
		;
	if (r->pos >= r->len)
		return 0;
	rec->line = r->line;
	rec->nfields = 0;
	rec->used = 0;
	for (;;) {
		if (rec->nfields == OMR_CSV_MAX_FIELDS) {
			*why = "too many fields";
			*errline = r->line;
			skip_line(r);
			return -EMSGSIZE;
		}
		rec->off[rec->nfields++] = rec->used;
		int rc;
		if (r->pos < r->len && r->buf[r->pos] == '"') {
			r->pos++;
			rc = quoted(r, rec, why, errline);
			if (rc == 0 && r->pos < r->len && r->buf[r->pos] != ',' &&
			    r->buf[r->pos] != '\n' && r->buf[r->pos] != '\r') {
				*why = "text after a closing quote";
				*errline = r->line;
				rc = -EINVAL;
			}
		} else {
			rc = unquoted(r, rec, why, errline);
		}
		if (rc == 0)
			rc = put(rec, '\0');
		if (rc == -ENOMEM)
			return rc;
		if (rc != 0) {
			if (rc == -EMSGSIZE)
				*why = "record too long";
			skip_line(r);
			return rc;
		}
		if (r->pos >= r->len || at_eol(r))
			return 1;
		if (r->buf[r->pos] == ',') {
			r->pos++;
			continue;
		}
		/* A lone CR after a closing quote. */
		*why = "carriage return without line feed";
		*errline = r->line;
		skip_line(r);
		return -EINVAL;
	}
}
