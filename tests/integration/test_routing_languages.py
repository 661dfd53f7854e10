"""test_routing_languages.py - Chinese by script across an upgrade, at the level of the
routing Functions (router/lua) on a real redis-server (a review of 63ce8e1, which routes
Chinese by script: zh-TW is zh-Hant, zh-CN zh-Hans). Each test failed against the library
of 63ce8e1:

1. A Taiwanese customer who waited through the upgrade kept the routing language the earlier
   version stored (zh): the chat went to an agent who reads only Simplified, or was closed
   as no-queue when the site split its Chinese queue by script at the upgrade. Such a chat
   takes its script at the next rules load (SIGHUP, an instance starting).
2. An instance of the earlier version, still running during a rolling upgrade, starts a
   Taiwanese customer's chat as plain zh: the library routes it by its tag's script.

    OMR_BUILD_DIR=build/asan python3 tests/integration/test_routing_languages.py [NAME...]
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lua_harness import P, T, LuaTestCase, as_run_test  # noqa: E402
from omr_harness import run_tests  # noqa: E402

CHINESE = {"name": "chinese", "languages": ["zh"], "steps": [{"after_s": 0}]}
TAIWAN = {"name": "taiwan", "languages": ["zh-Hant"], "steps": [{"after_s": 0}]}
MAINLAND = {"name": "mainland", "languages": ["zh-Hans"], "steps": [{"after_s": 0}]}


class ChineseUpgrade(LuaTestCase):
    def as_earlier_version_stored(self, conv):
        """Makes waiting chat conv look as the earlier version left it: routing language
        zh, in the zh waiting set of its queue and step, index format 4."""
        c = self.conv(conv)
        old_key = c["wait_key"]
        new_key = old_key[:old_key.rindex("|") + 1] + "zh"
        score = self.r("ZSCORE", old_key, conv)
        self.r("ZREM", old_key, conv)
        self.r("ZADD", new_key, score, conv)
        slot = old_key[len(P) + len(":wait:"):old_key.rindex("|")]
        self.r("SREM", f"{P}:waitlangs:{slot}", c["rlang"])
        self.r("SADD", f"{P}:waitlangs:{slot}", "zh")
        self.r("HSET", f"{P}:conv:{conv}", "rlang", "zh", "wait_key", new_key)
        self.r("SET", f"{P}:index_format", "4")

    def test_waiting_chat_takes_its_script_at_the_reload(self):
        self.rules(CHINESE)
        self.assertEqual(self.start("tw1", "zh-TW"), "queued")
        self.assertEqual(self.start("hk1", "zh-Hant-HK"), "queued")
        self.assertEqual(self.start("cn1", "zh-CN"), "queued")
        for conv in ("tw1", "hk1", "cn1"):
            self.as_earlier_version_stored(conv)
        self.check_invariants()
        # the site splits its Chinese queue by script at the upgrade
        self.rules(TAIWAN, MAINLAND)
        for conv, queue, rlang in (("tw1", "taiwan", "zh-Hant"), ("hk1", "taiwan", "zh-Hant"),
                                   ("cn1", "mainland", "zh-Hans")):
            c = self.conv(conv)
            self.assertEqual((c["state"], c["queue"], c["rlang"]), ("queued", queue, rlang), c)
        self.check_invariants()
        # a Simplified-only agent takes the mainland chat, not the Taiwanese ones
        self.agent("cn", {"zh-Hans": 9}, 3)
        self.assertEqual((self.conv("cn1")["state"], self.conv("cn1").get("agent")),
                         ("assigned", "cn"))
        self.assertEqual([self.conv(c)["state"] for c in ("tw1", "hk1")], ["queued", "queued"])
        self.agent("tw", {"zh-Hant": 9}, 3)
        self.assertEqual([self.conv(c).get("agent") for c in ("tw1", "hk1")], ["tw", "tw"])
        self.check_invariants()

    def test_waiting_chat_in_one_queue_is_not_given_to_the_other_script(self):
        self.rules(CHINESE)
        self.assertEqual(self.start("tw1", "zh-TW"), "queued")
        self.as_earlier_version_stored("tw1")
        self.rules(CHINESE)  # the new library's rules load (an instance connecting)
        self.assertEqual(self.conv("tw1")["rlang"], "zh-Hant")
        self.agent("cn", {"zh-Hans": 9}, 1)
        self.assertEqual(self.conv("tw1")["state"], "queued")
        self.agent("gen", {"zh": 8}, 1)
        self.assertEqual(self.conv("tw1").get("agent"), "gen")
        self.check_invariants()

    def test_earlier_instance_start_is_routed_by_script(self):
        """An earlier instance passes the routing language zh for zh-TW."""
        self.rules(CHINESE)
        self.agent("cn", {"zh-Hans": 9}, 2)
        st = self.fcall("omr_conv_start", "tw1", "tok", "zh-TW", "zh", "cust", "chat", T, "",
                        "{}", "[]")
        self.assertEqual(st, "queued")
        self.assertEqual(self.conv("tw1")["rlang"], "zh-Hant")
        st = self.fcall("omr_conv_start", "cn1", "tok", "zh-Hans-SG", "zh", "cust", "chat", T,
                        "", "{}", "[]")
        self.assertEqual((st, self.conv("cn1").get("agent")), ("assigned", "cn"))
        st = self.fcall("omr_conv_start", "z1", "tok", "zh-Latn-TW", "zh", "cust", "chat", T,
                        "", "{}", "[]")
        self.assertEqual((st, self.conv("z1")["rlang"]), ("assigned", "zh"))
        self.check_invariants()


def lua(name):
    return as_run_test(ChineseUpgrade, name)


TESTS = [
    lua("test_waiting_chat_takes_its_script_at_the_reload"),
    lua("test_waiting_chat_in_one_queue_is_not_given_to_the_other_script"),
    lua("test_earlier_instance_start_is_routed_by_script"),
]

if __name__ == "__main__":
    run_tests(TESTS)
