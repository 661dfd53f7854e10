/* test_ctl_csv.c - omnirouterctl's roster import without Redis: the RFC 4180
 * reader (router/ctl/ctl_csv.c) with its line numbers and error recovery,
 * and the agent field and roster row rules (router/ctl/ctl_spec.c) that turn
 * a row or a command-line value into omr_agent_upsert JSON. Single-threaded. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "ctl_csv.h"
#include "ctl_spec.h"

/* ---- helpers ---- */

typedef struct reader {
	omr_csv_t csv;
	omr_csv_record_t rec;
	const char *why;
	size_t errline;
} reader_t;

static void reader_open(reader_t *r, const char *buf, size_t len)
{
	omr_csv_init(&r->csv, buf, len);
	omr_csv_record_init(&r->rec);
	r->why = NULL;
	r->errline = 0;
}

static int next(reader_t *r)
{
	return omr_csv_next(&r->csv, &r->rec, &r->why, &r->errline);
}

/* Reads one record and checks its line and fields (NULL-terminated list). */
static void expect_record(reader_t *r, size_t line, ...)
{
	va_list ap;
	size_t i = 0;
	assert_int_equal(next(r), 1);
	assert_int_equal(r->rec.line, line);
	va_start(ap, line);
	for (const char *f; (f = va_arg(ap, const char *)) != NULL; i++) {
		assert_true(i < r->rec.nfields);
		assert_string_equal(omr_csv_field(&r->rec, i), f);
	}
	va_end(ap);
	assert_int_equal(r->rec.nfields, i);
	assert_null(omr_csv_field(&r->rec, i));
}

static void expect_error(reader_t *r, int rc, size_t line, const char *why_part)
{
	assert_int_equal(next(r), rc);
	assert_int_equal(r->errline, line);
	assert_non_null(r->why);
	if (!strstr(r->why, why_part))
		fail_msg("error '%s' should mention '%s'", r->why, why_part);
}

static void expect_end(reader_t *r)
{
	assert_int_equal(next(r), 0);
	assert_int_equal(next(r), 0); /* stays at the end */
	omr_csv_record_cleanup(&r->rec);
}

#define OPEN(r, lit) reader_open((r), (lit), sizeof(lit) - 1)

/* cJSON value of o as compact text, compared with want. */
static void assert_json(const cJSON *o, const char *want)
{
	char *s = cJSON_PrintUnformatted(o);
	assert_non_null(s);
	if (strcmp(s, want) != 0) {
		fprintf(stderr, "got  %s\nwant %s\n", s, want);
		free(s);
		fail();
	}
	free(s);
}

typedef int (*parse_fn)(const char *, char, cJSON **, char *, size_t);

static void parses_to(parse_fn parse, const char *in, char sep, const char *want)
{
	cJSON *o = NULL;
	char why[256] = "";
	int rc = parse(in, sep, &o, why, sizeof(why));
	if (rc != 0)
		fail_msg("'%s' refused: %s", in, why);
	assert_json(o, want);
	cJSON_Delete(o);
}

static void refused(parse_fn parse, const char *in, char sep, const char *why_part)
{
	cJSON *o = (cJSON *)1;
	char why[256] = "";
	assert_int_equal(parse(in, sep, &o, why, sizeof(why)), -EINVAL);
	assert_null(o);
	if (!strstr(why, why_part))
		fail_msg("'%s': reason '%s' should mention '%s'", in, why, why_part);
}

/* ---- the CSV reader ---- */

static void test_csv_plain_lf_and_crlf(void **state)
{
	reader_t r;
	OPEN(&r, "id,name\nana,Ana\r\nluis,Luis");
	expect_record(&r, 1, "id", "name", NULL);
	expect_record(&r, 2, "ana", "Ana", NULL);
	expect_record(&r, 3, "luis", "Luis", NULL); /* no line break at the end */
	expect_end(&r);
}

static void test_csv_quoting(void **state)
{
	reader_t r;
	/* RFC 4180 2.5-2.7: commas, line breaks and doubled quotes in quotes. */
	OPEN(&r, "\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n"
	         "\"\",x,\"crlf\r\ninside\"\n"
	         "last,\"\",\"\"\"\"\n");
	expect_record(&r, 1, "a,b", "say \"hi\"", "two\nlines", NULL);
	expect_record(&r, 3, "", "x", "crlf\r\ninside", NULL);
	expect_record(&r, 5, "last", "", "\"", NULL);
	expect_end(&r);
}

static void test_csv_empty_fields_blank_lines_bom(void **state)
{
	reader_t r;
	OPEN(&r, "\xEF\xBB\xBFid,name\n\n\r\na,,b\n,\nx,\n\n");
	expect_record(&r, 1, "id", "name", NULL); /* BOM not part of "id" */
	expect_record(&r, 4, "a", "", "b", NULL);
	expect_record(&r, 5, "", "", NULL);
	expect_record(&r, 6, "x", "", NULL);
	expect_end(&r);

	OPEN(&r, "");
	expect_end(&r);
	OPEN(&r, "\n\n");
	expect_end(&r);
	reader_open(&r, NULL, 0);
	expect_end(&r);
}

static void test_csv_spaces_are_data(void **state)
{
	reader_t r;
	OPEN(&r, " a , b \n");
	expect_record(&r, 1, " a ", " b ", NULL);
	expect_end(&r);
}

static void test_csv_errors_and_recovery(void **state)
{
	reader_t r;
	OPEN(&r, "id,name\n"
	         "ok,1\n"
	         "bad\"quote,2\n"
	         "\"closed\"junk,3\n"
	         "lone\rcr,4\n"
	         "after,5\n");
	expect_record(&r, 1, "id", "name", NULL);
	expect_record(&r, 2, "ok", "1", NULL);
	expect_error(&r, -EINVAL, 3, "quote inside an unquoted field");
	expect_error(&r, -EINVAL, 4, "text after a closing quote");
	expect_error(&r, -EINVAL, 5, "carriage return");
	expect_record(&r, 6, "after", "5", NULL); /* each bad line reported, then on */
	expect_end(&r);
}

static void test_csv_unterminated_quote(void **state)
{
	reader_t r;
	OPEN(&r, "a,b\nx,\"never\nclosed,here\n");
	expect_record(&r, 1, "a", "b", NULL);
	expect_error(&r, -EINVAL, 2, "unterminated"); /* the line the quote opened on */
	expect_end(&r);
}

static void test_csv_nul_and_lone_cr_after_quote(void **state)
{
	reader_t r;
	static const char nul[] = "a,b\x00"
	                          "c\nd,e\n";
	reader_open(&r, nul, sizeof(nul) - 1);
	expect_error(&r, -EINVAL, 1, "NUL");
	expect_record(&r, 2, "d", "e", NULL);
	expect_end(&r);

	static const char qnul[] = "\"a\x00\"\nz\n";
	reader_open(&r, qnul, sizeof(qnul) - 1);
	expect_error(&r, -EINVAL, 1, "NUL");
	expect_record(&r, 2, "z", NULL);
	expect_end(&r);

	OPEN(&r, "\"q\"\rx\ny\n");
	expect_error(&r, -EINVAL, 1, "carriage return");
	expect_record(&r, 2, "y", NULL);
	expect_end(&r);
}

static void test_csv_limits(void **state)
{
	reader_t r;
	/* OMR_CSV_MAX_FIELDS fields pass, one more is refused. */
	char *buf = malloc(4 * OMR_CSV_MAX_FIELDS + 16);
	size_t n = 0;
	for (size_t i = 0; i < OMR_CSV_MAX_FIELDS; i++)
		n += (size_t)snprintf(buf + n, 8, "%s%c", i ? "," : "", 'a');
	buf[n++] = '\n';
	memcpy(buf + n, buf, n);
	memcpy(buf + 2 * n - 1, ",b\nok\n", 6);
	size_t len = 2 * n - 1 + 6;
	reader_open(&r, buf, len);
	assert_int_equal(next(&r), 1);
	assert_int_equal(r.rec.nfields, OMR_CSV_MAX_FIELDS);
	expect_error(&r, -EMSGSIZE, 2, "too many fields");
	expect_record(&r, 3, "ok", NULL);
	expect_end(&r);
	free(buf);

	/* A record of OMR_CSV_MAX_RECORD bytes passes; one byte more does not. */
	size_t big = OMR_CSV_MAX_RECORD;
	buf = malloc(2 * big + 16);
	memset(buf, 'x', big);
	buf[big] = '\n';
	memset(buf + big + 1, 'y', big + 1);
	memcpy(buf + 2 * big + 2, "\nz\n", 3);
	reader_open(&r, buf, 2 * big + 5);
	assert_int_equal(next(&r), 1);
	assert_int_equal(strlen(omr_csv_field(&r.rec, 0)), big);
	expect_error(&r, -EMSGSIZE, 2, "too long");
	expect_record(&r, 3, "z", NULL);
	expect_end(&r);
	free(buf);
}

/* ---- field parsers ---- */

static void test_languages(void **state)
{
	parses_to(omr_ctl_parse_languages, "es:10,en:6", ',', "{\"es\":10,\"en\":6}");
	/* v1 form: no levels means 10; tags reduce to the primary subtag. */
	parses_to(omr_ctl_parse_languages, "en,es-MX", ',', "{\"en\":10,\"es\":10}");
	parses_to(omr_ctl_parse_languages, " EN-us : 3 , pt-BR:1 ", ',', "{\"en\":3,\"pt\":1}");
	parses_to(omr_ctl_parse_languages, "es:10|en:6", '|', "{\"es\":10,\"en\":6}");
	refused(omr_ctl_parse_languages, "", ',', "at least one");
	refused(omr_ctl_parse_languages, "es:11", ',', "1-10");
	refused(omr_ctl_parse_languages, "es:0", ',', "1-10");
	refused(omr_ctl_parse_languages, "es:", ',', "1-10");
	refused(omr_ctl_parse_languages, "es:x", ',', "1-10");
	refused(omr_ctl_parse_languages, "es_MX", ',', "BCP-47");
	refused(omr_ctl_parse_languages, "es,es-MX", ',', "twice");
	refused(omr_ctl_parse_languages, "es,,en", ',', "empty");
	refused(omr_ctl_parse_languages, "es,", ',', "empty");
	/* In a CSV cell the separator is '|': a comma is not one. */
	refused(omr_ctl_parse_languages, "es,en", '|', "BCP-47");
}

static void test_skills(void **state)
{
	parses_to(omr_ctl_parse_skills, "billing:7,refunds:3", ',',
	          "{\"billing\":7,\"refunds\":3}");
	parses_to(omr_ctl_parse_skills, "", ',', "{}"); /* clears */
	parses_to(omr_ctl_parse_skills, "tier-2.x_y:1", ',', "{\"tier-2.x_y\":1}");
	refused(omr_ctl_parse_skills, "billing", ',', "needs a level");
	refused(omr_ctl_parse_skills, "billing:11", ',', "needs a level 1-10");
	refused(omr_ctl_parse_skills, "bill ing:3", ',', "ids are");
	refused(omr_ctl_parse_skills, "billing:3,billing:4", ',', "twice");
	refused(omr_ctl_parse_skills, ":3", ',', "ids are");

	cJSON *ids = NULL;
	char why[128];
	assert_int_equal(omr_ctl_parse_skill_ids("billing, refunds", ',', &ids, why, sizeof(why)),
	                 0);
	assert_json(ids, "[\"billing\",\"refunds\"]");
	cJSON_Delete(ids);
	refused(omr_ctl_parse_skill_ids, "", ',', "at least one");
	refused(omr_ctl_parse_skill_ids, "a:1", ',', "ids are");
}

static void test_capacity(void **state)
{
	parses_to(omr_ctl_parse_capacity, "chat:3,email:5,voice:1", ',',
	          "{\"chat\":3,\"email\":5,\"voice\":1}");
	/* Every channel is sent, so the upsert replaces the whole capacity. */
	parses_to(omr_ctl_parse_capacity, "email:2", ',', "{\"chat\":0,\"email\":2,\"voice\":0}");
	parses_to(omr_ctl_parse_capacity, "2", ',', "{\"chat\":2,\"email\":0,\"voice\":0}");
	parses_to(omr_ctl_parse_capacity, "chat:0|voice:1", '|',
	          "{\"chat\":0,\"email\":0,\"voice\":1}");
	refused(omr_ctl_parse_capacity, "", ',', "empty");
	refused(omr_ctl_parse_capacity, "0", ',', "at least one");
	refused(omr_ctl_parse_capacity, "chat:0,email:0", ',', "at least one");
	refused(omr_ctl_parse_capacity, "101", ',', "0-100");
	refused(omr_ctl_parse_capacity, "-1", ',', "0-100");
	refused(omr_ctl_parse_capacity, "chat:x", ',', "0-100");
	refused(omr_ctl_parse_capacity, "fax:1", ',', "unknown channel");
	refused(omr_ctl_parse_capacity, "two", ',', "number of chats");
	refused(omr_ctl_parse_capacity, "chat:1,2", ',', "twice");
}

static void test_tenants_name_reason(void **state)
{
	char why[256];
	parses_to(omr_ctl_parse_tenants, "acme,globex", ',', "[\"acme\",\"globex\"]");
	parses_to(omr_ctl_parse_tenants, "acme|globex", '|', "[\"acme\",\"globex\"]");
	refused(omr_ctl_parse_tenants, "", ',', "at least one");
	refused(omr_ctl_parse_tenants, "ac me", ',', "ids are");
	refused(omr_ctl_parse_tenants, "acme,acme", ',', "twice");

	assert_int_equal(omr_ctl_check_name("Luis Núñez", why, sizeof(why)), 0);
	assert_int_equal(omr_ctl_check_name("", why, sizeof(why)), -EINVAL);
	assert_int_equal(omr_ctl_check_name("   ", why, sizeof(why)), -EINVAL);
	assert_int_equal(omr_ctl_check_name("two\nlines", why, sizeof(why)), -EINVAL);
	assert_int_equal(omr_ctl_check_name("bad \xc3\x28 utf8", why, sizeof(why)), -EINVAL);
	char long_name[300];
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[256] = '\0';
	assert_int_equal(omr_ctl_check_name(long_name, why, sizeof(why)), 0);
	long_name[256] = 'a';
	long_name[257] = '\0';
	assert_int_equal(omr_ctl_check_name(long_name, why, sizeof(why)), -EINVAL);

	assert_int_equal(omr_ctl_check_reason("", why, sizeof(why)), 0);
	assert_int_equal(omr_ctl_check_reason("lunch", why, sizeof(why)), 0);
	assert_int_equal(omr_ctl_check_reason("a\rb", why, sizeof(why)), -EINVAL);
	memset(long_name, 'r', 65);
	long_name[65] = '\0';
	assert_int_equal(omr_ctl_check_reason(long_name, why, sizeof(why)), -EINVAL);
}

static void test_supervises(void **state)
{
	char id128[200];
	parses_to(omr_ctl_parse_supervises, "ana,luis@floor-2", ',', "[\"ana\",\"luis@floor-2\"]");
	parses_to(omr_ctl_parse_supervises, " ana | luis ", '|', "[\"ana\",\"luis\"]");
	/* "" supervises nobody: the empty list clears the field */
	parses_to(omr_ctl_parse_supervises, "", ',', "[]");
	parses_to(omr_ctl_parse_supervises, "  ", ',', "[]");
	memset(id128, 'a', 128);
	id128[128] = '\0';
	cJSON *o = NULL;
	assert_int_equal(omr_ctl_parse_supervises(id128, ',', &o, NULL, 0), 0);
	assert_string_equal(cJSON_GetArrayItem(o, 0)->valuestring, id128);
	cJSON_Delete(o);
	id128[128] = 'a';
	id128[129] = '\0';
	refused(omr_ctl_parse_supervises, id128, ',', "ids are 1-128");
	refused(omr_ctl_parse_supervises, "ana,ana", ',', "'ana' is given twice");
	refused(omr_ctl_parse_supervises, "ana,,luis", ',', "ids are 1-128");
	refused(omr_ctl_parse_supervises, "a/b", ',', "agent 'a/b': ids are 1-128");
	refused(omr_ctl_parse_supervises, "ana,", ',', "ids are");
	assert_false(omr_ctl_list_has(NULL, "ana"));
}

/* ---- roster rows ---- */

/* Parses a header and returns the columns; fails the test on error. */
static void header(const char *line, omr_roster_cols_t *cols)
{
	reader_t r;
	char why[256];
	reader_open(&r, line, strlen(line));
	assert_int_equal(next(&r), 1);
	if (omr_roster_header(&r.rec, cols, why, sizeof(why)) != 0)
		fail_msg("header '%s' refused: %s", line, why);
	omr_csv_record_cleanup(&r.rec);
}

static void header_refused(const char *line, const char *why_part)
{
	reader_t r;
	omr_roster_cols_t cols;
	char why[256];
	reader_open(&r, line, strlen(line));
	assert_int_equal(next(&r), 1);
	assert_int_equal(omr_roster_header(&r.rec, &cols, why, sizeof(why)), -EINVAL);
	if (!strstr(why, why_part))
		fail_msg("header '%s': reason '%s' should mention '%s'", line, why, why_part);
	omr_csv_record_cleanup(&r.rec);
}

static void row_is(const omr_roster_cols_t *cols, const char *line, const char *want_id,
                   const char *want_json)
{
	reader_t r;
	const char *id = NULL;
	cJSON *o = NULL;
	char why[256];
	reader_open(&r, line, strlen(line));
	assert_int_equal(next(&r), 1);
	if (omr_roster_row(cols, &r.rec, &id, &o, why, sizeof(why)) != 0)
		fail_msg("row '%s' refused: %s", line, why);
	assert_string_equal(id, want_id);
	assert_json(o, want_json);
	cJSON_Delete(o);
	omr_csv_record_cleanup(&r.rec);
}

static void row_refused(const omr_roster_cols_t *cols, const char *line, const char *why_part)
{
	reader_t r;
	const char *id = NULL;
	cJSON *o = (cJSON *)1;
	char why[256] = "";
	reader_open(&r, line, strlen(line));
	assert_int_equal(next(&r), 1);
	assert_int_equal(omr_roster_row(cols, &r.rec, &id, &o, why, sizeof(why)), -EINVAL);
	assert_null(o);
	if (!strstr(why, why_part))
		fail_msg("row '%s': reason '%s' should mention '%s'", line, why, why_part);
	omr_csv_record_cleanup(&r.rec);
}

static void test_roster_header(void **state)
{
	omr_roster_cols_t cols;
	header("id,name,languages,skills,capacity,tenants\n", &cols);
	assert_int_equal(cols.nfields, 6);
	assert_int_equal(cols.at[OMR_ROSTER_ID], 0);
	assert_int_equal(cols.at[OMR_ROSTER_TENANTS], 5);
	/* Any order, any case, padded; optional columns may be absent. */
	header(" Languages ,NAME,Id\r\n", &cols);
	assert_int_equal(cols.nfields, 3);
	assert_int_equal(cols.at[OMR_ROSTER_LANGUAGES], 0);
	assert_int_equal(cols.at[OMR_ROSTER_NAME], 1);
	assert_int_equal(cols.at[OMR_ROSTER_ID], 2);
	assert_int_equal(cols.at[OMR_ROSTER_SKILLS], -1);
	assert_int_equal(cols.at[OMR_ROSTER_CAPACITY], -1);

	header_refused("id,name\n", "lacks column 'languages'");
	header_refused("name,languages\n", "lacks column 'id'");
	header_refused("id,name,languages,shoe_size\n", "unknown column 'shoe_size'");
	header_refused("id,name,languages,id\n", "'id' appears twice");
	header("id,name,languages,Supervises\n", &cols);
	assert_int_equal(cols.at[OMR_ROSTER_SUPERVISES], 3);
	/* A spreadsheet's trailing empty columns: no column, while their cells are empty too. */
	header("id,name,languages,,\n", &cols);
	assert_int_equal(cols.nfields, 5);
	row_is(&cols, "ana,Ana,en,,\n", "ana", "{\"name\":\"Ana\",\"languages\":{\"en\":10}}");
	row_refused(&cols, "ana,Ana,en,,x\n", "field 5 has a value but no column name");
	row_refused(&cols, "ana,Ana,\"en\nes\",,\n",
	            "languages: a value may not hold a line break");
}

static void test_roster_rows(void **state)
{
	omr_roster_cols_t cols;
	header("id,name,languages,skills,capacity,tenants\n", &cols);
	row_is(&cols,
	       "ana,\"López, Ana\",es-MX:10|en:6,billing:7|refunds:3,chat:3|email:5,acme|globex\n",
	       "ana",
	       "{\"name\":\"López, Ana\",\"languages\":{\"es\":10,\"en\":6},"
	       "\"skills\":{\"billing\":7,\"refunds\":3},"
	       "\"capacity\":{\"chat\":3,\"email\":5,\"voice\":0},"
	       "\"tenants\":[\"acme\",\"globex\"]}");
	/* Empty optional cells are left out: defaults for new agents, current
	 * values for existing ones. */
	row_is(&cols, "luis,Luis,es,,,\n", "luis", "{\"name\":\"Luis\",\"languages\":{\"es\":10}}");

	row_refused(&cols, "ana,Ana,es\n", "3 fields, but the header has 6");
	row_refused(&cols, "an a,Ana,es,,,\n", "id 'an a'");
	row_refused(&cols, ",Ana,es,,,\n", "id ''");
	row_refused(&cols, "ana,,es,,,\n", "name");
	row_refused(&cols, "ana,Ana,,,,\n", "languages: at least one");
	row_refused(&cols, "ana,Ana,es:11,,,\n", "languages: proficiency of 'es' must be 1-10");
	row_refused(&cols, "ana,Ana,es|es-MX,,,\n", "languages: language 'es' is given twice");
	row_refused(&cols, "ana,Ana,es,billing,,\n", "skills: skill 'billing' needs a level");
	row_refused(&cols, "ana,Ana,es,,fax:1,\n", "capacity: unknown channel 'fax'");
	row_refused(&cols, "ana,Ana,es,,,a b\n", "tenants: tenant 'a b'");
	row_refused(&cols, "ana,\"two\nlines\",es,,,\n", "name");

	/* supervises: ids separated by |; an empty cell keeps the current list */
	header("id,name,languages,supervises\n", &cols);
	row_is(&cols, "sup,Sue,en,ana|luis\n", "sup",
	       "{\"name\":\"Sue\",\"languages\":{\"en\":10},\"supervises\":[\"ana\",\"luis\"]}");
	row_is(&cols, "sup,Sue,en,\n", "sup", "{\"name\":\"Sue\",\"languages\":{\"en\":10}}");
	row_refused(&cols, "sup,Sue,en,ana|sup\n", "cannot supervise itself");
	row_refused(&cols, "sup,Sue,en,ana|ana\n", "supervises: agent 'ana' is given twice");
	row_refused(&cols, "sup,Sue,en,a b\n", "supervises: agent 'a b'");

	/* Without the optional columns. */
	header("id,name,languages\n", &cols);
	row_is(&cols, "x1,X,fr\n", "x1", "{\"name\":\"X\",\"languages\":{\"fr\":10}}");
}

static void test_new_agent_defaults(void **state)
{
	cJSON *a = cJSON_Parse("{\"name\":\"X\",\"languages\":{\"fr\":10}}");
	assert_int_equal(omr_ctl_new_agent_defaults(a, "acme"), 0);
	assert_json(a, "{\"name\":\"X\",\"languages\":{\"fr\":10},\"skills\":{},"
	               "\"capacity\":{\"chat\":1,\"email\":0,\"voice\":0},\"tenants\":[\"acme\"],"
	               "\"supervises\":[]}");
	cJSON_Delete(a);
	/* Given fields stay. */
	a = cJSON_Parse("{\"skills\":{\"b\":2},\"capacity\":{\"voice\":1},\"tenants\":[\"t\"],"
	                "\"supervises\":[\"ana\"]}");
	assert_int_equal(omr_ctl_new_agent_defaults(a, "acme"), 0);
	assert_json(a, "{\"skills\":{\"b\":2},\"capacity\":{\"voice\":1},\"tenants\":[\"t\"],"
	               "\"supervises\":[\"ana\"]}");
	cJSON_Delete(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_csv_plain_lf_and_crlf),
	        cmocka_unit_test(test_csv_quoting),
	        cmocka_unit_test(test_csv_empty_fields_blank_lines_bom),
	        cmocka_unit_test(test_csv_spaces_are_data),
	        cmocka_unit_test(test_csv_errors_and_recovery),
	        cmocka_unit_test(test_csv_unterminated_quote),
	        cmocka_unit_test(test_csv_nul_and_lone_cr_after_quote),
	        cmocka_unit_test(test_csv_limits),
	        cmocka_unit_test(test_languages),
	        cmocka_unit_test(test_skills),
	        cmocka_unit_test(test_capacity),
	        cmocka_unit_test(test_tenants_name_reason),
	        cmocka_unit_test(test_roster_header),
	        cmocka_unit_test(test_roster_rows),
	        cmocka_unit_test(test_new_agent_defaults),
	        cmocka_unit_test(test_supervises),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
