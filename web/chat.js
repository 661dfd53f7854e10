/* chat.js - the customer chat widget. Speaks docs/PROTOCOL.md on
 * ws(s)://<host>/ws/customer. Keeps conversation_id, resume_token, tenant,
 * the last seq seen and unacknowledged messages in sessionStorage, so a reload
 * or a dropped network resumes the same conversation and resends what the
 * server has not acknowledged (same id: the server de-duplicates). */
(function () {
	"use strict";

	var KEY = "omr.chat";
	var $ = function (id) { return document.getElementById(id); };
	var ui = {
		status: $("status"), start: $("start"), lang: $("lang"), langOther: $("lang-other"),
		name: $("name"), startError: $("start-error"), conv: $("conversation"),
		list: $("messages"), compose: $("compose"), text: $("text"), send: $("send"),
		ended: $("ended"), restart: $("restart")
	};

	var ws = null;
	var backoff = 500;
	var retryTimer = null;
	var resendTimer = null;
	var seen = {};        /* seq -> true: items already shown */
	var shownIds = {};    /* own message id -> <li> (local echo) */
	var wantHello = null; /* {language, name} while starting */
	var state = load();   /* persisted session or null */

	function load() {
		try {
			return JSON.parse(sessionStorage.getItem(KEY)) || null;
		} catch (e) {
			return null;
		}
	}

	function save() {
		if (state)
			sessionStorage.setItem(KEY, JSON.stringify(state));
		else
			sessionStorage.removeItem(KEY);
	}

	function seqKey(seq) {
		var p = String(seq).split("-");
		return [Number(p[0]) || 0, Number(p[1]) || 0];
	}

	function seqAfter(a, b) {
		if (!b)
			return true;
		var x = seqKey(a), y = seqKey(b);
		return x[0] > y[0] || (x[0] === y[0] && x[1] > y[1]);
	}

	function setStatus(text) { ui.status.textContent = text; }

	function timeOf(ts) {
		var d = ts ? new Date(ts) : new Date();
		return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
	}

	function addLine(cls, who, text, ts) {
		var li = document.createElement("li");
		li.className = cls;
		if (who) {
			var w = document.createElement("span");
			w.className = "who";
			w.textContent = who;
			li.appendChild(w);
		}
		var t = document.createElement("span");
		t.className = "text";
		t.textContent = text;
		li.appendChild(t);
		var m = document.createElement("time");
		m.textContent = timeOf(ts);
		li.appendChild(m);
		ui.list.appendChild(li);
		ui.list.scrollTop = ui.list.scrollHeight;
		return li;
	}

	function showChat() {
		ui.start.hidden = true;
		ui.conv.hidden = false;
		ui.text.focus();
	}

	function showStart(error) {
		ui.conv.hidden = true;
		ui.start.hidden = false;
		ui.startError.hidden = !error;
		ui.startError.textContent = error || "";
		setStatus("");
	}

	function send(obj) {
		if (ws && ws.readyState === WebSocket.OPEN) {
			ws.send(JSON.stringify(obj));
			return true;
		}
		return false;
	}

	function connect() {
		clearTimeout(retryTimer);
		var proto = location.protocol === "https:" ? "wss://" : "ws://";
		ws = new WebSocket(proto + location.host + "/ws/customer");
		setStatus("connecting…");
		ws.onopen = onOpen;
		ws.onmessage = function (ev) {
			var msg;
			try {
				msg = JSON.parse(ev.data);
			} catch (e) {
				return;
			}
			onFrame(msg);
		};
		ws.onclose = onClose;
	}

	function onOpen() {
		if (state && state.conversation_id) {
			var r = { type: "resume", v: 1, conversation_id: state.conversation_id,
				  resume_token: state.resume_token, after: state.last_seq || "0" };
			if (state.tenant_given)
				r.tenant = state.tenant;
			send(r);
		} else if (wantHello) {
			var h = { type: "hello", v: 1, language: wantHello.language };
			if (wantHello.name)
				h.name = wantHello.name;
			send(h);
		}
	}

	function onClose(ev) {
		ws = null;
		if (ev.code === 1008 && ev.reason === "unauthorized") {
			return; /* handled by the error frame */
		}
		if (!state && !wantHello)
			return;
		if (state && state.closed)
			return;
		setStatus("reconnecting…");
		var delay = Math.min(backoff, 15000) * (0.75 + Math.random() / 2);
		backoff = Math.min(backoff * 2, 15000);
		retryTimer = setTimeout(connect, delay);
	}

	function resendPending() {
		if (!state)
			return;
		state.pending.forEach(function (p) {
			if (!shownIds[p.id])
				shownIds[p.id] = addLine("me", "You", p.text);
			send({ type: "message", id: p.id, text: p.text });
		});
	}

	function onWelcome(msg) {
		backoff = 500;
		if (!state) {
			state = { conversation_id: msg.conversation_id, resume_token: msg.resume_token,
				  tenant: msg.tenant, tenant_given: false, last_seq: "",
				  pending: [], next: 1, closed: false };
			wantHello = null;
		}
		save();
		showChat();
		setStatus(msg.state === "assigned" ? "connected" : "waiting for an agent");
		resendPending();
	}

	function onItem(msg) {
		if (!msg.seq || seen[msg.seq])
			return;
		seen[msg.seq] = true;
		if (msg.type === "message") {
			var mine = msg.from === "customer";
			if (mine && shownIds[msg.id]) {
				shownIds[msg.id].classList.add("acked");
			} else {
				var li = addLine(mine ? "me" : "them",
						 mine ? "You" : (msg.name || "Agent"), msg.text, msg.ts);
				if (mine) {
					li.classList.add("acked");
					shownIds[msg.id] = li;
				}
			}
			if (mine)
				dropPending(msg.id);
		} else if (msg.type === "event") {
			if (msg.event === "assigned") {
				setStatus("connected");
				addLine("event", "", (msg.name || "An agent") + " joined the chat", msg.ts);
			} else if (msg.event === "closed") {
				addLine("event", "", "The conversation was closed", msg.ts);
				endConversation();
			} else {
				addLine("event", "", msg.event, msg.ts);
			}
		}
		if (state && seqAfter(msg.seq, state.last_seq)) {
			state.last_seq = msg.seq;
			save();
		}
	}

	function dropPending(id) {
		if (!state)
			return;
		state.pending = state.pending.filter(function (p) { return p.id !== id; });
		save();
	}

	function onError(msg) {
		if (msg.code === "unauthorized" && !(state && state.conversation_id && msg.id)) {
			/* the resume token no longer works: start over */
			state = null;
			save();
			showStart("Your previous conversation could not be resumed.");
			return;
		}
		if (msg.id && shownIds[msg.id]) {
			if (msg.code === "unavailable") {
				clearTimeout(resendTimer);
				resendTimer = setTimeout(resendPending, 3000);
				return;
			}
			shownIds[msg.id].classList.add("failed");
			shownIds[msg.id].title = msg.reason || msg.code;
			dropPending(msg.id);
			if (msg.code === "closed")
				endConversation();
			return;
		}
		if (msg.code === "unavailable" && wantHello) {
			setStatus("the service is busy, retrying…");
			setTimeout(onOpen, 3000);
			return;
		}
		setStatus("error: " + (msg.reason || msg.code));
	}

	function onFrame(msg) {
		switch (msg.type) {
		case "welcome":
			onWelcome(msg);
			break;
		case "ack":
			if (shownIds[msg.id])
				shownIds[msg.id].classList.add("acked");
			dropPending(msg.id);
			break;
		case "message":
		case "event":
			onItem(msg);
			break;
		case "error":
			onError(msg);
			break;
		}
	}

	function endConversation() {
		if (state) {
			state.closed = true;
			state.pending = [];
		}
		sessionStorage.removeItem(KEY);
		setStatus("conversation closed");
		ui.compose.hidden = true;
		ui.ended.hidden = false;
		if (ws)
			ws.close(1000);
	}

	function sendMessage(text) {
		var id = "c-" + state.next++;
		state.pending.push({ id: id, text: text });
		save();
		shownIds[id] = addLine("me", "You", text);
		send({ type: "message", id: id, text: text });
	}

	ui.lang.addEventListener("change", function () {
		ui.langOther.hidden = ui.lang.value !== "other";
	});

	ui.start.addEventListener("submit", function (ev) {
		ev.preventDefault();
		var lang = ui.lang.value === "other" ? ui.langOther.value.trim() : ui.lang.value;
		if (!/^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/.test(lang)) {
			showStart("Please enter a language tag such as es-MX.");
			return;
		}
		wantHello = { language: lang, name: ui.name.value.trim() };
		ui.startError.hidden = true;
		if (ws && ws.readyState === WebSocket.OPEN)
			onOpen();
		else
			connect();
	});

	ui.compose.addEventListener("submit", function (ev) {
		ev.preventDefault();
		var text = ui.text.value.trim();
		if (!text || !state || state.closed)
			return;
		ui.text.value = "";
		sendMessage(text);
	});

	ui.text.addEventListener("keydown", function (ev) {
		if (ev.key === "Enter" && !ev.shiftKey) {
			ev.preventDefault();
			ui.compose.requestSubmit();
		}
	});

	ui.restart.addEventListener("click", function () {
		state = null;
		save();
		seen = {};
		shownIds = {};
		ui.list.textContent = "";
		ui.compose.hidden = false;
		ui.ended.hidden = true;
		showStart("");
	});

	if (state && state.conversation_id && !state.closed) {
		showChat();
		/* resume asks for everything after last_seq; redraw from the start
		 * after a reload, since the page lost what it showed */
		state.last_seq = "";
		connect();
	} else {
		state = null;
		save();
		showStart("");
	}
}());
