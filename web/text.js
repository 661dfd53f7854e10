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

	/* text in parts of at most MAX_TEXT_BYTES bytes, cut between characters. */
	function parts(text) {
		var out = [], cur = "", bytes = 0;
		Array.from(text).forEach(function (ch) {
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

	window.omrText = { MAX_TEXT_BYTES: MAX_TEXT_BYTES, utf8Length: utf8Length, parts: parts };
}());
