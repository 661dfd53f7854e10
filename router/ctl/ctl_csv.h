/* ctl_csv.h - an RFC 4180 CSV reader over a buffer in memory, for the roster
 * import of omnirouterctl. No I/O and no globals: the caller reads the file;
 * tests feed it bytes directly. Any thread (one reader per thread).
 *
 * Accepted: fields separated by ',', records by CRLF or LF; a field in double
 * quotes may hold ',', CR, LF and '""' (one quote); a UTF-8 byte order mark
 * at the very start is skipped (spreadsheets write one); blank lines between
 * records are skipped; the last record may lack a line break.
 * Rejected: an unterminated quoted field, a quote inside an unquoted field,
 * anything but a separator after a closing quote, a CR not followed by LF
 * outside quotes, NUL bytes, more than OMR_CSV_MAX_FIELDS fields or more than
 * OMR_CSV_MAX_RECORD bytes in one record. */
#ifndef OMR_CTL_CSV_H
#define OMR_CTL_CSV_H

#include <stddef.h>

#define OMR_CSV_MAX_FIELDS 64u
#define OMR_CSV_MAX_RECORD 65536u /* bytes of one record's field data */

typedef struct omr_csv {
	const char *buf; /* not owned; must outlive the reader */
	size_t len;
	size_t pos;
	size_t line; /* 1-based line of buf[pos] */
} omr_csv_t;

/* One record. Fields point into storage the record owns and reuses from one
 * omr_csv_next() to the next; omr_csv_record_cleanup() frees it. */
typedef struct omr_csv_record {
	size_t line;    /* line the record starts on */
	size_t nfields; /* >= 1 */
	size_t off[OMR_CSV_MAX_FIELDS];
	char *data;
	size_t used, cap;
} omr_csv_record_t;

/* No I/O, no allocation. */
void omr_csv_init(omr_csv_t *r, const char *buf, size_t len);
void omr_csv_record_init(omr_csv_record_t *rec);
void omr_csv_record_cleanup(omr_csv_record_t *rec);

/* Reads the next record into rec. Returns 1 (a record), 0 (end of input),
 * -EINVAL (malformed) or -EMSGSIZE (too many fields or bytes) with *why (a
 * static string) and *errline (the line of the problem) set, or -ENOMEM.
 * After -EINVAL/-EMSGSIZE the reader has skipped to the line after the
 * problem, so the caller may go on to report every bad line; an unterminated
 * quote consumes the rest of the input. why and errline may be NULL. */
int omr_csv_next(omr_csv_t *r, omr_csv_record_t *rec, const char **why, size_t *errline);

/* Field i (NUL-terminated), or NULL when i >= rec->nfields. */
const char *omr_csv_field(const omr_csv_record_t *rec, size_t i);

#endif
