/* text.js - chat text helpers shared by the chat page and the agent desktop
 * (loaded before chat.js and agent.js). */
(function () {
	"use strict";

	/* The daemon takes at most chat.max_text_bytes (4096 by default) bytes of
	 * UTF-8 per message, note and comment; text boxes count characters. */
	var MAX_TEXT_BYTES = 4096;

	function utf8Length(s) {
		return new TextEncoder().encode(s).length;
	}

	/* Control characters but tab and line breaks (pasted terminal colours,
	 * say) show as nothing, and JSON sends each as six bytes: the frame
	 * limit leaves room for text that JSON at most doubles. */
	var CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g;

	/* text, without control characters, in parts of at most MAX_TEXT_BYTES
	 * bytes, cut between characters. */
	function parts(text) {
		var out = [], cur = "", bytes = 0;
		Array.from(text.replace(CONTROL, "")).forEach(function (ch) {
			var n = utf8Length(ch);
			if (bytes + n > MAX_TEXT_BYTES) {
				out.push(cur);
				cur = "";
				bytes = 0;
			}
			cur += ch;
			bytes += n;
		});
		out.push(cur);
		return out;
	}

	var LANG_TAG = /^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/;

	/* Puts people's text (a message, a name, a note) into el. Its direction
	 * comes from the text itself (dir=auto): Arabic or Hebrew shown left to
	 * right reads scrambled at its numbers and punctuation. lang, when a
	 * language tag, is the conversation's language: screen readers use it,
	 * and it picks the right glyphs for Chinese or Japanese text. */
	function show(el, text, lang) {
		el.textContent = text;
		el.dir = "auto";
		if (lang && LANG_TAG.test(lang))
			el.lang = lang;
		return el;
	}

	window.omrText = { MAX_TEXT_BYTES: MAX_TEXT_BYTES, utf8Length: utf8Length, parts: parts,
		show: show };
}());
