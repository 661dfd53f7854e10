/* chat.js - the customer chat widget. Speaks docs/PROTOCOL.md on
 * ws(s)://<host>/ws/customer. Keeps conversation_id, resume_token, tenant,
 * the last seq seen and unacknowledged messages in sessionStorage, so a reload
 * or a dropped network resumes the same conversation and resends what the
 * server has not acknowledged (same id: the server de-duplicates).
 *
 * Embedded by web/widget.js, the page takes its options from the query string:
 * language, topic, customer_id, customer_signature, name, tenant (and
 * embed=1). The customer id comes from there (with the site's signature of it
 * when the daemon verifies identities), else from a random one kept in
 * localStorage, so a returning customer is recognized; a daemon that verifies
 * identities refuses that unsigned id, and the page then starts anonymously,
 * without one (and remembers not to send it again). While waiting it shows the place in the
 * queue, while talking whether the agent types (and tells the agent when the
 * customer types, at most once per 2 s), and after the end a 1-5 survey. */
(function () {
	"use strict";

	var KEY = "omr.chat";
	var HELLO_KEY = "omr.chat.hello"; /* the hello not answered yet (a reload sends it again) */
	var CUSTOMER_KEY = "omr.customer_id";
	var VERIFIES_KEY = "omr.verifies"; /* "1": the daemon refused this browser's own id */
	var TYPING_SHOW_MS = 4000;   /* "Agent is typing…" stays this long */
	var TYPING_SEND_MS = 2000;   /* at most one typing notice per this */
	var ID_RE = /^[A-Za-z0-9._:@-]{1,128}$/;
	var SIG_RE = /^[0-9a-f]{64}$/;
	var LANG_RE = /^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/;
	var $ = function (id) { return document.getElementById(id); };
	var ui = {
		status: $("status"), start: $("start"), lang: $("lang"), langOther: $("lang-other"),
		topic: $("topic"), name: $("name"), startError: $("start-error"),
		conv: $("conversation"), position: $("position"), typing: $("typing"),
		list: $("messages"), compose: $("compose"), text: $("text"), send: $("send"),
		ended: $("ended"), restart: $("restart"), survey: $("survey"),
		comment: $("rate-comment"), rateSend: $("rate-send"), surveyError: $("survey-error"),
		thanks: $("survey-thanks")
	};
	var stars = Array.prototype.slice.call(document.querySelectorAll("#stars .star"));

	var ws = null;
	var backoff = 500;
	/* The connection's hello or resume was answered: until then the server
	 * refuses anything else, so messages wait in state.pending. */
	var welcomed = false;
	var retryTimer = null;
	var resendTimer = null;
	var typingTimer = null;
	var lastTypingSent = 0;
	var nextTyping = 1;
	var assigned = false; /* an agent is in the conversation: typing goes out */
	var seen = {};        /* seq -> true: items already shown */
	var shownIds = {};    /* own message id -> <li> (local echo) */
	var wantHello = null; /* {language, name, topic, tenant, key} while starting */
	var rating = null;    /* {score, comment, id, sent} once the survey is answered */
	var score = 0;
	var opts = readOptions();
	/* The site's id (never replaced by this browser's own) and its signature. */
	var siteId = !!(opts.customer_id && ID_RE.test(opts.customer_id));
	var customerId = siteId || !daemonVerifies() ? customerIdFor(opts.customer_id) : null;
	var customerSig = siteId && SIG_RE.test(opts.customer_signature || "")
		? opts.customer_signature : null;
	var anonRetry = false; /* this browser's id was refused: reconnect without it */
	var state = load();   /* persisted session or null */
	/* Message ids are "c-PAGE-N": a duplicated tab copies the stored counter,
	 * and the server takes a repeated id for a resend. */
	var pageId = randomHex(4);

	/* n random bytes as hex. */
	function randomHex(n) {
		var bytes = new Uint8Array(n);
		crypto.getRandomValues(bytes);
		return Array.prototype.map.call(bytes, function (b) {
			return ("0" + b.toString(16)).slice(-2);
		}).join("");
	}

	/* Options from the page's query string (web/widget.js passes them). */
	function readOptions() {
		var q = new URLSearchParams(location.search);
		var o = {};
		["language", "topic", "customer_id", "customer_signature", "name",
		 "tenant"].forEach(function (k) {
			var v = (q.get(k) || "").trim();
			if (v)
				o[k] = v;
		});
		if (q.get("embed") === "1")
			document.body.classList.add("embedded");
		return o;
	}

	/* A daemon that verifies identities refuses this browser's own (unsigned)
	 * id; once it did, the page starts anonymously without asking again. */
	function daemonVerifies() {
		try {
			return localStorage.getItem(VERIFIES_KEY) === "1";
		} catch (e) {
			return false;
		}
	}

	/* The embedding page's customer id when valid, else this browser's own. */
	function customerIdFor(given) {
		if (given && ID_RE.test(given))
			return given;
		var id = null;
		try {
			id = localStorage.getItem(CUSTOMER_KEY);
		} catch (e) {
			id = null;
		}
		if (id && ID_RE.test(id))
			return id;
		id = "web-" + randomHex(16);
		try {
			localStorage.setItem(CUSTOMER_KEY, id);
		} catch (e) {
			/* no storage (private mode): recognized for this page only */
		}
		return id;
	}

	function applyOptions() {
		if (opts.language && LANG_RE.test(opts.language)) {
			var primary = opts.language.toLowerCase();
			var known = Array.prototype.some.call(ui.lang.options, function (o) {
				return o.value === primary;
			});
			if (known) {
				ui.lang.value = primary;
			} else {
				ui.lang.value = "other";
				ui.langOther.value = opts.language;
				ui.langOther.hidden = false;
			}
		}
		if (opts.topic && ID_RE.test(opts.topic)) {
			var has = Array.prototype.some.call(ui.topic.options, function (o) {
				return o.value === opts.topic;
			});
			if (!has) {
				var opt = document.createElement("option");
				opt.value = opts.topic;
				opt.textContent = opts.topic;
				ui.topic.appendChild(opt);
			}
			ui.topic.value = opts.topic;
		}
		if (opts.name)
			ui.name.value = opts.name.slice(0, 100);
	}

	function load() {
		try {
			return JSON.parse(sessionStorage.getItem(KEY)) || null;
		} catch (e) {
			return null;
		}
	}

	/* A closed conversation is kept until its survey is answered (a reload
	 * shows it again) or a new chat starts. A browser that refuses storage
	 * (a third-party frame, private mode) keeps it in this page only. */
	function save() {
		try {
			if (state && !state.rated)
				sessionStorage.setItem(KEY, JSON.stringify(state));
			else
				sessionStorage.removeItem(KEY);
		} catch (e) {
			/* kept in memory */
		}
	}

	/* The hello being started survives a reload: sent again with its key, it
	 * gets the conversation the first one made, if it made one. */
	function saveHello(h) {
		wantHello = h;
		try {
			if (h)
				sessionStorage.setItem(HELLO_KEY, JSON.stringify(h));
			else
				sessionStorage.removeItem(HELLO_KEY);
		} catch (e) {
			/* kept in memory */
		}
	}

	function loadHello() {
		try {
			var h = JSON.parse(sessionStorage.getItem(HELLO_KEY));
			return h && typeof h.language === "string" && typeof h.key === "string" ? h : null;
		} catch (e) {
			return null;
		}
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

	/* Lines from the server go above this page's messages that the server
	 * has not confirmed yet (after a reload those are sent again, and the
	 * transcript replayed before them). */
	function addLine(cls, who, text, ts, pending) {
		var li = document.createElement("li");
		li.className = cls;
		if (who) {
			var w = document.createElement("span");
			w.className = "who";
			omrText.show(w, who);
			li.appendChild(w);
		}
		var t = document.createElement("span");
		t.className = "text";
		/* people's words in the conversation's language; the page's own in English */
		if (cls === "event")
			t.textContent = text;
		else
			omrText.show(t, text, state && state.language);
		li.appendChild(t);
		var m = document.createElement("time");
		m.textContent = timeOf(ts);
		li.appendChild(m);
		var first = ui.list.querySelector("li.pending");
		if (pending)
			li.classList.add("pending");
		if (first && !pending)
			ui.list.insertBefore(li, first);
		else
			ui.list.appendChild(li);
		ui.list.scrollTop = ui.list.scrollHeight;
		return li;
	}

	/* A message of this page is confirmed: it takes its place among the
	 * confirmed lines (the server's order). */
	function confirmLine(li) {
		li.classList.add("acked");
		if (!li.classList.contains("pending"))
			return;
		li.classList.remove("pending");
		var first = ui.list.querySelector("li.pending");
		if (first)
			ui.list.insertBefore(li, first);
	}

	function showChat() {
		ui.start.hidden = true;
		ui.conv.hidden = false;
		if (!ui.compose.hidden)
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
		welcomed = false;
		setStatus("connecting…");
		ws.onopen = onOpen;
		ws.onmessage = function (ev) {
			var msg;
			heard();
			try {
				msg = JSON.parse(ev.data);
			} catch (e) {
				return;
			}
			onFrame(msg);
		};
		ws.onclose = onClose;
	}

	/* A customer waiting for an agent sends nothing: the page pings when
	 * idle (liveness.js), and a connection that does not answer is dropped
	 * and resumed like any other lost one. */
	var heard = OmrLiveness.watch({
		socket: function () { return ws; }, /* a hello on a dead path too */
		dead: function (old) {
			old.onmessage = null;
			old.onclose = null;
			try {
				old.close();
			} catch (e) {
				/* closing already */
			}
			onClose({ code: 1006, reason: "" });
		}
	});

	function onOpen() {
		heard();
		anonRetry = false;
		if (state && state.conversation_id) {
			var r = { type: "resume", v: 1, conversation_id: state.conversation_id,
				  resume_token: state.resume_token, after: state.last_seq || "0" };
			if (state.tenant_given)
				r.tenant = state.tenant;
			send(r);
		} else if (wantHello) {
			var h = { type: "hello", v: 1, language: wantHello.language };
			if (customerId)
				h.customer_id = customerId;
			if (customerId && customerSig)
				h.customer_signature = customerSig;
			if (wantHello.name)
				h.name = wantHello.name;
			if (wantHello.topic)
				h.topic = wantHello.topic;
			if (wantHello.tenant)
				h.tenant = wantHello.tenant;
			h.key = wantHello.key; /* a hello sent again gets the same conversation */
			send(h);
		}
	}

	function onClose(ev) {
		ws = null;
		welcomed = false;
		if (ev.code === 1008 && ev.reason === "unauthorized") {
			if (anonRetry) {
				anonRetry = false;
				connect(); /* sends the hello again, without an id */
			}
			return; /* handled by the error frame */
		}
		if (!state && !wantHello)
			return;
		if (state && state.closed) {
			/* only the survey may still need the connection: sent or not
			 * (answered while the service was down), it goes on the next */
			if (rating && !rating.done) {
				setStatus("reconnecting to send your feedback…");
				retryTimer = setTimeout(connect, Math.min(backoff, 15000));
				backoff = Math.min(backoff * 2, 15000);
			}
			return;
		}
		setStatus("reconnecting…");
		var delay = Math.min(backoff, 15000) * (0.75 + Math.random() / 2);
		backoff = Math.min(backoff * 2, 15000);
		retryTimer = setTimeout(connect, delay);
	}

	function resendPending() {
		if (!state || !welcomed)
			return; /* the welcome sends them */
		state.pending.forEach(function (p) {
			if (!shownIds[p.id])
				shownIds[p.id] = addLine("me", "You", p.text, null, true);
			send({ type: "message", id: p.id, text: p.text });
		});
	}

	function onWelcome(msg) {
		backoff = 500;
		welcomed = true;
		if (!state) {
			state = { conversation_id: msg.conversation_id, resume_token: msg.resume_token,
				  tenant: msg.tenant, tenant_given: !!(wantHello && wantHello.tenant),
				  language: wantHello ? wantHello.language : "",
				  last_seq: "", pending: [], next: 1, closed: false };
			saveHello(null);
		}
		save();
		showChat();
		if (state.closed) {
			setStatus("conversation closed");
			sendRating();
			return;
		}
		setWaiting(msg.state !== "assigned");
		resendPending();
	}

	/* Waiting for an agent (at the start, or again after a transfer) or
	 * talking to one. */
	function setWaiting(waiting) {
		assigned = !waiting;
		setStatus(waiting ? "waiting for an agent" : "connected");
		if (!waiting)
			ui.position.hidden = true;
		else
			hideTyping();
	}

	function onPosition(msg) {
		if (assigned || !state || state.closed || typeof msg.position !== "number" ||
		    msg.position < 1)
			return;
		var text = "You are number " + msg.position + " in line";
		if (typeof msg.eta_ms === "number" && msg.eta_ms > 0) {
			var min = Math.max(1, Math.round(msg.eta_ms / 60000));
			text += ", about " + min + " min";
		}
		ui.position.textContent = text;
		ui.position.hidden = false;
	}

	function hideTyping() {
		clearTimeout(typingTimer);
		typingTimer = null;
		ui.typing.hidden = true;
	}

	function onTyping() {
		if (!state || state.closed)
			return;
		ui.typing.hidden = false;
		clearTimeout(typingTimer);
		typingTimer = setTimeout(hideTyping, TYPING_SHOW_MS);
	}

	/* Tells the agent the customer types; at most once per TYPING_SEND_MS,
	 * and only while an agent is there to see it. */
	function sendTyping() {
		var now = Date.now();
		if (!state || state.closed || !assigned || now - lastTypingSent < TYPING_SEND_MS)
			return;
		if (send({ type: "typing", id: "t-" + nextTyping++ }))
			lastTypingSent = now;
	}

	var EVENT_TEXT = {
		transferred: "You are being transferred to another agent",
		requeued: "Your agent was disconnected; finding you another one"
	};

	/* A conversation closed before any agent took it (PROTOCOL.md, `closed`
	 * reasons): said so, and no survey, since nobody served it. */
	var CLOSE_TEXT = {
		abandoned: "This chat ended while you were away, before an agent took it. " +
			"Start a new chat to try again",
		"max-wait": "No agent could take your chat in time. Please start a new chat " +
			"or try again later",
		"no-queue": "This chat can no longer be answered here. Please start a new chat"
	};

	/* Ended by the site (omnirouterctl conversation close): said so; the
	 * survey only if an agent had served the chat (state.served: an
	 * `assigned` event came, even if it waited again since). */
	var ADMIN_TEXT = "This chat was ended by the support team";

	function onItem(msg) {
		if (!msg.seq || seen[msg.seq])
			return;
		seen[msg.seq] = true;
		if (msg.type === "message") {
			var mine = msg.from === "customer";
			if (!mine)
				hideTyping();
			if (mine && shownIds[msg.id]) {
				confirmLine(shownIds[msg.id]);
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
				setWaiting(false);
				if (state)
					state.served = true; /* (kept: the survey of a chat the site ends) */
				addLine("event", "", (msg.name || "An agent") + " joined the chat", msg.ts);
			} else if (msg.event === "closed") {
				var unserved = CLOSE_TEXT[msg.reason];
				if (msg.reason === "admin") {
					addLine("event", "", ADMIN_TEXT, msg.ts);
					endConversation(!!(state && state.served));
				} else {
					addLine("event", "", unserved || "The conversation was closed", msg.ts);
					endConversation(!unserved);
				}
			} else if (EVENT_TEXT[msg.event]) {
				/* a transfer's note is for the next agent: never shown here */
				setWaiting(true);
				addLine("event", "", EVENT_TEXT[msg.event], msg.ts);
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
		if (msg.id && msg.id.indexOf("t-") === 0)
			return; /* a typing notice that did not go through: no matter */
		if (rating && msg.id === rating.id) {
			onRatingError(msg);
			return;
		}
		if (msg.code === "unauthorized" && !state && wantHello) {
			/* The hello's customer id was not taken: the daemon verifies ids. */
			if (!siteId && customerId) {
				customerId = null; /* this browser's own id is never signed */
				anonRetry = true;
				try {
					localStorage.setItem(VERIFIES_KEY, "1");
				} catch (e) {
					/* no storage: asked again next time */
				}
				return;
			}
			saveHello(null);
			showStart("We could not confirm who you are. Please reload the page " +
				  "(sign in again) and try once more.");
			return;
		}
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
			shownIds[msg.id].classList.remove("pending");
			shownIds[msg.id].classList.add("failed");
			shownIds[msg.id].title = msg.reason || msg.code;
			dropPending(msg.id);
			if (msg.code === "closed")
				endConversation(true);
			return;
		}
		if (msg.code === "unavailable" && (wantHello || (!welcomed && state))) {
			/* the hello or resume was not taken in time: again (messages
			 * written meanwhile wait for the welcome) */
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
			if (rating && msg.id === rating.id) {
				onRated();
				break;
			}
			if (shownIds[msg.id])
				confirmLine(shownIds[msg.id]);
			dropPending(msg.id);
			break;
		case "message":
		case "event":
			onItem(msg);
			break;
		case "position":
			onPosition(msg);
			break;
		case "typing":
			onTyping();
			break;
		case "error":
			onError(msg);
			break;
		}
	}

	/* The conversation is over: the survey, on the same connection (it is
	 * closed once the answer is stored, or when a new chat starts). One that
	 * no agent served has no survey, and nothing is kept of it. */
	function endConversation(survey) {
		if (state) {
			state.closed = true;
			state.pending = [];
			state.rated = state.rated || !survey;
		}
		assigned = false;
		save();
		hideTyping();
		ui.position.hidden = true;
		setStatus("conversation closed");
		ui.compose.hidden = true;
		ui.ended.hidden = false;
		if (!survey) {
			ui.survey.hidden = true;
			ui.thanks.hidden = true;
			if (ws)
				ws.close(1000); /* nothing more to send */
		} else if (!rating) {
			ui.survey.hidden = false;
			ui.thanks.hidden = true;
		}
		/* The box that replaced the composer is taller: keep the last
		 * line ("the conversation was closed") in view. */
		ui.list.scrollTop = ui.list.scrollHeight;
	}

	/* ---- the survey ---------------------------------------------------- */

	function pickScore(n) {
		score = n;
		stars.forEach(function (b) {
			var s = Number(b.dataset.score);
			b.setAttribute("aria-pressed", s === n ? "true" : "false");
			b.classList.toggle("on", s <= n);
		});
		ui.rateSend.disabled = !(score >= 1 && score <= 5);
	}

	function sendRating() {
		if (!rating || rating.done)
			return;
		var frame = { type: "rate", score: rating.score, id: rating.id };
		if (rating.comment)
			frame.comment = rating.comment;
		if (send(frame)) {
			rating.sent = true;
			return;
		}
		if (!ws && state && state.conversation_id)
			connect(); /* resumes, then sends it (onWelcome) */
	}

	function onRated() {
		rating.done = true;
		if (state) {
			state.rated = true;
			save();
		}
		ui.survey.hidden = true;
		ui.thanks.hidden = false;
		ui.restart.focus(); /* the focused button just went away */
		if (ws)
			ws.close(1000);
	}

	function onRatingError(msg) {
		if (msg.code === "unavailable") {
			setTimeout(sendRating, 3000);
			return;
		}
		ui.surveyError.textContent = "Your feedback could not be sent: " +
			(msg.reason || msg.code);
		ui.surveyError.hidden = false;
		rating = null;
		setSurveyBusy(false);
	}

	function setSurveyBusy(busy) {
		stars.forEach(function (b) { b.disabled = busy; });
		ui.comment.disabled = busy;
		ui.rateSend.disabled = busy || !(score >= 1 && score <= 5);
	}

	stars.forEach(function (b) {
		b.addEventListener("click", function () { pickScore(Number(b.dataset.score)); });
		b.addEventListener("keydown", function (ev) {
			/* arrows move between the stars, as in a radio group */
			var i = stars.indexOf(b);
			var next = ev.key === "ArrowRight" || ev.key === "ArrowUp" ? i + 1
				: ev.key === "ArrowLeft" || ev.key === "ArrowDown" ? i - 1 : -2;
			if (next === -2)
				return;
			ev.preventDefault();
			next = Math.max(0, Math.min(stars.length - 1, next));
			stars[next].focus();
			pickScore(next + 1);
		});
	});

	ui.survey.addEventListener("submit", function (ev) {
		ev.preventDefault();
		if (!(score >= 1 && score <= 5) || !state || rating)
			return;
		ui.surveyError.hidden = true;
		/* the box counts characters, the daemon bytes: a longer comment
		 * keeps its first 4 KiB (about 700 words, or 1,300 characters of
		 * Hindi) */
		var comment = omrText.parts(ui.comment.value.trim())[0];
		rating = { score: score, comment: comment,
			   id: "s-" + Date.now().toString(36), sent: false, done: false };
		setSurveyBusy(true);
		sendRating();
	});

	function resetSurvey() {
		rating = null;
		score = 0;
		pickScore(0);
		ui.comment.value = "";
		setSurveyBusy(false);
		ui.survey.hidden = true;
		ui.surveyError.hidden = true;
		ui.thanks.hidden = true;
	}

	/* ---- sending ------------------------------------------------------- */

	function sendMessage(text) {
		omrText.parts(text).forEach(function (part) {
			var id = "c-" + pageId + "-" + state.next++;
			state.pending.push({ id: id, text: part });
			shownIds[id] = addLine("me", "You", part, null, true);
			if (welcomed) /* else sent on the welcome (resendPending) */
				send({ type: "message", id: id, text: part });
		});
		save();
	}

	ui.lang.addEventListener("change", function () {
		ui.langOther.hidden = ui.lang.value !== "other";
	});

	ui.start.addEventListener("submit", function (ev) {
		ev.preventDefault();
		var lang = ui.lang.value === "other" ? ui.langOther.value.trim() : ui.lang.value;
		if (!LANG_RE.test(lang)) {
			showStart("Please enter a language tag such as es-MX.");
			return;
		}
		var h = { language: lang, name: ui.name.value.trim(), topic: ui.topic.value,
			  key: randomHex(16) };
		if (opts.tenant && ID_RE.test(opts.tenant))
			h.tenant = opts.tenant;
		saveHello(h);
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

	ui.text.addEventListener("input", function () {
		if (ui.text.value.trim())
			sendTyping();
	});

	ui.restart.addEventListener("click", function () {
		var old = ws;
		ws = null;
		if (old) {
			old.onclose = null;
			old.close(1000);
		}
		clearTimeout(retryTimer);
		state = null;
		save();
		seen = {};
		shownIds = {};
		assigned = false;
		ui.list.textContent = "";
		ui.position.hidden = true;
		hideTyping();
		resetSurvey();
		ui.compose.hidden = false;
		ui.ended.hidden = true;
		showStart("");
	});

	applyOptions();
	if (state && state.conversation_id && !state.rated) {
		showChat();
		/* resume asks for everything after last_seq; redraw from the start
		 * after a reload, since the page lost what it showed */
		state.last_seq = "";
		connect();
	} else {
		state = null;
		save();
		showStart("");
		var started = loadHello(); /* started before a reload, not answered yet */
		if (started) {
			wantHello = started;
			connect();
		}
	}
}());
