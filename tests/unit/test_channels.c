/* Unit tests for channels/: language tags and the chat channel's rules. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "omnirouter/channel.h"

static void test_language_primary(void **state)
{
	char out[16];
	assert_int_equal(omr_language_primary("es-MX", out, sizeof(out)), 0);
	assert_string_equal(out, "es");
	assert_int_equal(omr_language_primary("EN", out, sizeof(out)), 0);
	assert_string_equal(out, "en");
	assert_int_equal(omr_language_primary("zh-Hant-TW", out, sizeof(out)), 0);
	assert_string_equal(out, "zh-Hant");
	assert_int_equal(omr_language_primary("fil", out, sizeof(out)), 0);
	assert_string_equal(out, "fil");
	/* what a floor meets: old Java/Android codes, extlang and grandfathered tags, aliases */
	static const char *const same[][2] = {
	        {"iw-IL", "he"},
	        {"IN-id", "id"},
	        {"ji", "yi"},
	        {"jw", "jv"},
	        {"mo-MD", "ro"},
	        {"tl", "fil"},
	        {"tl-PH", "fil"},
	        {"zh-yue", "yue"},
	        {"zh-yue-HK", "yue"},
	        {"ZH-Yue", "yue"},
	        {"zh-cmn-Hans", "zh-Hans"},
	        {"cmn", "zh"},
	        {"zh-min-nan", "nan"},
	        {"zh-min-nan-TW", "nan"},
	        {"zh-hakka", "hak"},
	        {"ar-arb", "ar"},
	        {"sgn-ase", "ase"},
	        {"zh-Hans", "zh-Hans"},
	        {"es-419", "es"},
	        {"en-US-u-ca-gregory", "en"},
	        {"yue-HK", "yue"},
	        {"he", "he"},
	        {"zh-min", "zh"},
	        {"x-klingon", NULL},
	        /* Chinese by script: the script subtag, else the region, else plain zh */
	        {"zh-TW", "zh-Hant"},
	        {"zh-hk", "zh-Hant"},
	        {"ZH-MO", "zh-Hant"},
	        {"zh-CN", "zh-Hans"},
	        {"zh-SG", "zh-Hans"},
	        {"zh-MY", "zh-Hans"},
	        {"zh", "zh"},
	        {"zh-hant", "zh-Hant"},
	        {"zh-HANS-HK", "zh-Hans"},
	        {"zh-Hant-CN", "zh-Hant"},
	        {"cmn-Hant", "zh-Hant"},
	        {"cmn-TW", "zh-Hant"},
	        {"zh-Latn-CN", "zh"},
	        {"zh-Hanb-TW", "zh-Hant"},
	        {"zh-US", "zh"},
	        {"zh-419", "zh"},
	        {"zh-x-tw", "zh"},
	        {"zh-u-nu-hant", "zh"},
	        {"zh-guoyu", "zh"},
	        {"zh-min-nan-TW", "nan"},
	        {"yue-Hant-HK", "yue"},
	        {"zh-yue-Hans", "yue"},
	        {"zh-hakka", "hak"},
	};
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		int rc = omr_language_primary(same[i][0], out, sizeof(out));
		if (!same[i][1]) {
			assert_int_equal(rc, -EINVAL);
			continue;
		}
		assert_int_equal(rc, 0);
		if (strcmp(out, same[i][1]) != 0)
			fail_msg("%s -> %s, want %s", same[i][0], out, same[i][1]);
	}
	assert_int_equal(omr_language_primary("", out, sizeof(out)), -EINVAL);
	assert_int_equal(omr_language_primary("e", out, sizeof(out)), -EINVAL);
	assert_int_equal(omr_language_primary("es_MX", out, sizeof(out)), -EINVAL);
	assert_int_equal(omr_language_primary("es-", out, sizeof(out)), -EINVAL);
	assert_int_equal(omr_language_primary("es-toolongsubtag", out, sizeof(out)), -EINVAL);
	assert_int_equal(omr_language_primary("es mx", out, sizeof(out)), -EINVAL);
	assert_int_equal(omr_language_primary("en", out, 4), -EINVAL); /* out too small */
}

static void test_chat_text_rules(void **state)
{
	const omr_channel_ops_t *chat = omr_channel_get(OMR_CHANNEL_CHAT);
	const char *why = NULL;
	assert_non_null(chat);
	assert_int_equal(chat->capacity_cost, 1);
	assert_int_equal(chat->validate_text("hola", 4, 10, &why), 0);
	assert_int_equal(chat->validate_text("", 0, 10, &why), -EINVAL);
	assert_int_equal(chat->validate_text("hello world", 11, 10, &why), -EMSGSIZE);
	assert_int_equal(chat->validate_text("a\0b", 3, 10, &why), -EINVAL);
	assert_int_equal(chat->validate_text("\xc3\x28", 2, 10, &why), -EINVAL);
	assert_non_null(why);
	assert_int_equal(chat->validate_text("\xc3\xb1", 2, 10, &why), 0); /* ñ */
	assert_null(omr_channel_get(OMR_CHANNEL_VOICE));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_language_primary),
	        cmocka_unit_test(test_chat_text_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
