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
 * messages, acks) never pings. A page whose request goes unanswered asks
 * for a ping sooner (heard.probe). Tests may set window.OMR_LIVENESS_MS =
 * {idle, answer, check} before this file loads. */
(function () {
	"use strict";

	var ms = window.OMR_LIVENESS_MS || {};
	var IDLE_MS = ms.idle || 20000;
	var ANSWER_MS = ms.answer || 10000;
	var CHECK_MS = ms.check || 2000;

	/* opts.socket(): the connection to watch (open or not), or null; a ping
	 * may go before the login or hello is answered. opts.dead(ws): that
	 * connection did not answer. Returns heard(), to call on every frame
	 * received and on every new connection. */
	function watch(opts) {
		var lastRx = Date.now();
		var pingAt = 0;
		var n = 0;

		function usable() {
			var ws = opts.socket();
			return ws && ws.readyState === WebSocket.OPEN ? ws : null;
		}

		function ping(ws) {
			ws.send(JSON.stringify({ type: "ping", id: "ping-" + (++n) }));
			pingAt = Date.now();
		}

		setInterval(function () {
			var ws = usable();
			if (!ws) {
				pingAt = 0;
				return;
			}
			var now = Date.now();
			if (pingAt && now - pingAt > ANSWER_MS) {
				pingAt = 0;
				lastRx = now;
				opts.dead(ws);
			} else if (!pingAt && now - lastRx > IDLE_MS) {
				ping(ws);
			}
		}, CHECK_MS);

		function heard() {
			lastRx = Date.now();
			pingAt = 0;
		}
		/* A request of the page's has gone unanswered: the server may be slow
		 * (Redis down: it holds requests up to bus.ack_timeout_ms x
		 * bus.max_attempts) or the connection dead. Nothing heard for quietMs:
		 * ping now; the connection is dropped only if the ping goes unanswered. */
		heard.probe = function (quietMs) {
			var ws = usable();
			if (ws && !pingAt && Date.now() - lastRx > quietMs)
				ping(ws);
		};
		return heard;
	}

	window.OmrLiveness = { watch: watch };
})();
