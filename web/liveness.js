/* liveness.js - a websocket liveness check shared by the chat page and the
 * agent desktop (loaded before chat.js and agent.js).
 *
 * A connection the network lost without a word (no FIN, no RST: a laptop
 * that slept, a Wi-Fi change, a NAT or proxy that forgot it) looks open to
 * the browser for many minutes, and a page that sends nothing meanwhile
 * learns nothing: the desktop shows "online" while no offer can reach it,
 * the customer waits for messages that cannot come. So, after IDLE_MS
 * without a frame from the server, the page sends {"type":"ping"}, which the
 * server answers at once with {"type":"pong"} (docs/PROTOCOL.md); no frame
 * within ANSWER_MS of the ping means the connection is dead, and the page
 * drops it and reconnects. A page that hears from the server often (offers,
 * messages, acks) never pings. Tests may set window.OMR_LIVENESS_MS =
 * {idle, answer, check} before this file loads. */
(function () {
	"use strict";

	var ms = window.OMR_LIVENESS_MS || {};
	var IDLE_MS = ms.idle || 20000;
	var ANSWER_MS = ms.answer || 10000;
	var CHECK_MS = ms.check || 2000;

	/* opts.socket(): the connection to watch, or null while there is none
	 * that may be used (not logged in or welcomed yet); opts.dead(ws): that
	 * connection did not answer. Returns heard(), to call on every frame
	 * received and on every new connection. */
	function watch(opts) {
		var lastRx = Date.now();
		var pingAt = 0;
		var n = 0;
		setInterval(function () {
			var ws = opts.socket();
			if (!ws || ws.readyState !== WebSocket.OPEN) {
				pingAt = 0;
				return;
			}
			var now = Date.now();
			if (pingAt && now - pingAt > ANSWER_MS) {
				pingAt = 0;
				lastRx = now;
				opts.dead(ws);
			} else if (!pingAt && now - lastRx > IDLE_MS) {
				ws.send(JSON.stringify({ type: "ping", id: "ping-" + (++n) }));
				pingAt = now;
			}
		}, CHECK_MS);
		return function heard() {
			lastRx = Date.now();
			pingAt = 0;
		};
	}

	window.OmrLiveness = { watch: watch };
})();
