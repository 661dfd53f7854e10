/* agent.js - the agent desktop. Speaks docs/PROTOCOL.md on
 * ws(s)://<host>/ws/agent: logs in (form, sessionStorage, or the URL fragment
 * #agent=ID&token=TOKEN), toggles presence, shows assigned conversations and
 * their transcripts, replies, closes. Every delivered item is acknowledged
 * after it is displayed; items are de-duplicated by seq because unacknowledged
 * ones come again after a reconnect. Reconnects with backoff and logs in
 * again (and restores "available" if the agent had chosen it). */
(function () {
	"use strict";

	var KEY = "omr.agent";
	var $ = function (id) { return document.getElementById(id); };
	var ui = {
		who: $("who"), status: $("status"), presence: $("presence"), logout: $("logout"),
		login: $("login"), agentId: $("agent-id"), token: $("token"),
		loginError: $("login-error"), desk: $("desk"), list: $("conv-list"),
		none: $("no-convs"), title: $("conv-title"), closeBtn: $("close-conv"),
		messages: $("messages"), compose: $("compose"), text: $("text")
	};

	var ws = null;
	var creds = null;       /* {agent, token} */
	var wantAvailable = false;
	var presence = "away";
	var backoff = 500;
	var retryTimer = null;
	var loggedIn = false;
	var stopped = false;    /* replaced or logged out: no reconnect */
	var seen = {};          /* seq -> true */
	var convs = {};         /* conversation_id -> {id, name, lang, items[], unread, closed, li} */
	var order = [];
	var current = null;
	var nextId = 1;
	var pending = {};       /* request id -> {kind, conv, li} */

	function setStatus(t) { ui.status.textContent = t; }

	/* The server re-delivers only unacknowledged items, so the page keeps
	 * what it showed (per tab) to survive a reload. */
	var CONVS_KEY = "omr.agent.convs";
	var KEEP_ITEMS = 200;

	function saveConvs() {
		var out = order.map(function (id) {
			var c = convs[id];
			return { id: c.id, name: c.name, lang: c.lang, closed: c.closed,
				 items: c.items.slice(-KEEP_ITEMS).map(function (it) {
					 return { type: it.type, seq: it.seq, id: it.id, from: it.from,
						  name: it.name, text: it.text, ts: it.ts,
						  language: it.language };
				 }) };
		});
		try {
			sessionStorage.setItem(CONVS_KEY, JSON.stringify({ agent: creds && creds.agent,
									   convs: out }));
		} catch (e) {
			/* storage full: the page still works, a reload just forgets */
		}
	}

	function restoreConvs(agent) {
		var data = null;
		try {
			data = JSON.parse(sessionStorage.getItem(CONVS_KEY));
		} catch (e) {
			data = null;
		}
		if (!data || !data.agent || data.agent !== agent)
			return;
		data.convs.forEach(function (saved) {
			var c = conv(saved.id);
			c.name = saved.name;
			c.lang = saved.lang;
			c.closed = saved.closed;
			saved.items.forEach(function (it) {
				if (it.seq)
					seen[it.seq] = true;
				it.li = lineFor(it);
				if (it.from === "agent" && !it.seq)
					it.li.classList.add("acked");
				c.items.push(it);
			});
			renderConvEntry(c);
		});
		if (order.length)
			select(order[order.length - 1]);
	}

	function send(obj) {
		if (ws && ws.readyState === WebSocket.OPEN) {
			ws.send(JSON.stringify(obj));
			return true;
		}
		return false;
	}

	function newId(prefix) {
		return prefix + "-" + Date.now().toString(36) + "-" + (nextId++);
	}

	function timeOf(ts) {
		var d = ts ? new Date(ts) : new Date();
		return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
	}

	/* ---- connection ---------------------------------------------------- */

	function connect() {
		clearTimeout(retryTimer);
		var proto = location.protocol === "https:" ? "wss://" : "ws://";
		ws = new WebSocket(proto + location.host + "/ws/agent");
		setStatus("connecting…");
		ws.onopen = function () {
			send({ type: "login", v: 1, agent_id: creds.agent, token: creds.token });
		};
		ws.onmessage = function (ev) {
			var msg;
			try {
				msg = JSON.parse(ev.data);
			} catch (e) {
				return;
			}
			onFrame(msg);
		};
		ws.onclose = function () {
			ws = null;
			loggedIn = false;
			ui.presence.hidden = true;
			if (stopped || !creds)
				return;
			setStatus("reconnecting…");
			var delay = Math.min(backoff, 15000) * (0.75 + Math.random() / 2);
			backoff = Math.min(backoff * 2, 15000);
			retryTimer = setTimeout(connect, delay);
		};
	}

	function onFrame(msg) {
		switch (msg.type) {
		case "welcome":
			onWelcome(msg);
			break;
		case "ack":
			onAck(msg);
			break;
		case "assigned":
		case "message":
		case "closed":
			onItem(msg);
			break;
		case "error":
			onError(msg);
			break;
		}
	}

	function onWelcome(msg) {
		loggedIn = true;
		backoff = 500;
		saveCreds();
		ui.login.hidden = true;
		ui.desk.hidden = false;
		ui.logout.hidden = false;
		ui.presence.hidden = false;
		ui.who.textContent = (msg.name || msg.agent_id) +
			(msg.languages && msg.languages.length ? " · " + msg.languages.join(", ") : "") +
			(msg.capacity !== undefined ? " · capacity " + msg.capacity : "");
		showPresence(msg.presence || "away");
		setStatus("online");
		if (wantAvailable && presence !== "available")
			setPresence("available");
	}

	function onAck(msg) {
		var p = pending[msg.id];
		if (!p)
			return;
		delete pending[msg.id];
		if (p.kind === "presence") {
			showPresence(msg.presence);
		} else if (p.kind === "message") {
			p.li.classList.add("acked");
			saveConvs();
		}
	}

	function onError(msg) {
		var p = msg.id ? pending[msg.id] : null;
		if (msg.code === "replaced") {
			stopped = true;
			setStatus("logged in elsewhere: this window is disconnected");
			return;
		}
		if (msg.code === "unauthorized" && !loggedIn) {
			stopped = true;
			sessionStorage.removeItem(KEY);
			showLogin("Wrong agent id or token.");
			return;
		}
		if (p) {
			delete pending[msg.id];
			if (p.li) {
				p.li.classList.add("failed");
				p.li.title = msg.reason || msg.code;
			}
			if (p.kind === "presence")
				wantAvailable = presence === "available";
		}
		setStatus("error: " + (msg.reason || msg.code));
	}

	/* ---- conversations ------------------------------------------------- */

	function conv(id) {
		if (convs[id])
			return convs[id];
		var c = { id: id, name: "", lang: "", items: [], unread: 0, closed: false };
		var li = document.createElement("li");
		li.tabIndex = 0;
		li.addEventListener("click", function () { select(id); });
		li.addEventListener("keydown", function (ev) {
			if (ev.key === "Enter")
				select(id);
		});
		c.li = li;
		convs[id] = c;
		order.push(id);
		ui.list.appendChild(li);
		ui.none.hidden = true;
		return c;
	}

	function renderConvEntry(c) {
		c.li.textContent = "";
		var n = document.createElement("span");
		n.className = "name";
		n.textContent = c.name || ("Customer " + c.id.slice(0, 6));
		var meta = document.createElement("span");
		meta.className = "meta";
		meta.textContent = (c.lang || "?") + (c.closed ? " · closed" : "") +
			(c.unread ? " · " + c.unread + " new" : "");
		c.li.appendChild(n);
		c.li.appendChild(meta);
		c.li.classList.toggle("selected", current === c.id);
		c.li.classList.toggle("closed", c.closed);
		c.li.classList.toggle("unread", c.unread > 0);
	}

	function lineFor(item) {
		var li = document.createElement("li");
		var who = document.createElement("span");
		who.className = "who";
		var text = document.createElement("span");
		text.className = "text";
		if (item.type === "message") {
			var mine = item.from === "agent";
			li.className = mine ? "me" : "them";
			who.textContent = mine ? (item.name || "You") : (item.name || "Customer");
			text.textContent = item.text;
		} else {
			li.className = "event";
			text.textContent = item.type === "assigned" ? "Conversation assigned" +
				(item.language ? " (" + item.language + ")" : "") : "Conversation closed";
		}
		li.appendChild(who);
		li.appendChild(text);
		var t = document.createElement("time");
		t.textContent = timeOf(item.ts);
		li.appendChild(t);
		return li;
	}

	function select(id) {
		current = id;
		var c = convs[id];
		c.unread = 0;
		ui.messages.textContent = "";
		c.items.forEach(function (it) { ui.messages.appendChild(it.li || lineFor(it)); });
		ui.messages.scrollTop = ui.messages.scrollHeight;
		ui.title.textContent = (c.name || "Customer") + " · " + (c.lang || "?") + " · " + c.id;
		ui.compose.hidden = c.closed;
		ui.closeBtn.hidden = c.closed;
		order.forEach(function (k) { renderConvEntry(convs[k]); });
		if (!c.closed)
			ui.text.focus();
	}

	function onItem(item) {
		if (!item.seq || !item.conversation_id)
			return;
		if (!seen[item.seq]) {
			seen[item.seq] = true;
			var c = conv(item.conversation_id);
			if (item.type === "assigned") {
				c.name = item.customer_name || c.name;
				c.lang = item.language || c.lang;
			} else if (item.type === "closed") {
				c.closed = true;
			}
			var dupOwn = item.type === "message" && item.from === "agent" &&
				c.items.some(function (it) { return it.id === item.id && it.type === "message"; });
			if (!dupOwn) {
				item.li = lineFor(item);
				c.items.push(item);
				if (current === c.id) {
					ui.messages.appendChild(item.li);
					ui.messages.scrollTop = ui.messages.scrollHeight;
				} else if (item.type === "message") {
					c.unread++;
				}
			}
			if (!current)
				select(c.id);
			else if (current === c.id)
				select(c.id);
			else
				renderConvEntry(c);
		}
		saveConvs();
		/* Displayed (or already shown): confirm it, so it is not delivered again. */
		send({ type: "ack", seq: item.seq });
	}

	function reply(text) {
		var c = convs[current];
		if (!c || c.closed)
			return;
		var id = newId("a");
		var item = { type: "message", from: "agent", id: id, text: text, name: "You" };
		item.li = lineFor(item);
		c.items.push(item);
		ui.messages.appendChild(item.li);
		ui.messages.scrollTop = ui.messages.scrollHeight;
		pending[id] = { kind: "message", conv: c.id, li: item.li };
		if (!send({ type: "message", conversation_id: c.id, id: id, text: text })) {
			item.li.classList.add("failed");
			item.li.title = "not connected";
			delete pending[id];
		}
	}

	/* ---- presence and login -------------------------------------------- */

	function saveCreds() {
		if (creds)
			sessionStorage.setItem(KEY, JSON.stringify({ agent: creds.agent, token: creds.token,
								    available: wantAvailable }));
	}

	function showPresence(p) {
		presence = p === "available" ? "available" : "away";
		ui.presence.textContent = presence === "available" ? "Available" : "Away";
		ui.presence.className = "presence " + presence;
		ui.presence.setAttribute("aria-pressed", presence === "available" ? "true" : "false");
	}

	function setPresence(p) {
		var id = newId("p");
		pending[id] = { kind: "presence" };
		send({ type: "presence", presence: p, id: id });
	}

	function showLogin(error) {
		ui.desk.hidden = true;
		ui.login.hidden = false;
		ui.logout.hidden = true;
		ui.presence.hidden = true;
		ui.who.textContent = "";
		ui.loginError.hidden = !error;
		ui.loginError.textContent = error || "";
		setStatus("");
	}

	function start(agent, token) {
		creds = { agent: agent, token: token };
		if (!order.length)
			restoreConvs(agent);
		stopped = false;
		ui.loginError.hidden = true;
		connect();
	}

	ui.login.addEventListener("submit", function (ev) {
		ev.preventDefault();
		start(ui.agentId.value.trim(), ui.token.value.trim());
	});

	ui.presence.addEventListener("click", function () {
		var next = presence === "available" ? "away" : "available";
		wantAvailable = next === "available";
		saveCreds();
		setPresence(next);
	});

	ui.logout.addEventListener("click", function () {
		stopped = true;
		creds = null;
		sessionStorage.removeItem(KEY);
		sessionStorage.removeItem(CONVS_KEY);
		if (ws)
			ws.close(1000);
		showLogin("");
	});

	ui.closeBtn.addEventListener("click", function () {
		var c = convs[current];
		if (!c || c.closed)
			return;
		var id = newId("r");
		pending[id] = { kind: "close", conv: c.id };
		send({ type: "close", conversation_id: c.id, id: id });
	});

	ui.compose.addEventListener("submit", function (ev) {
		ev.preventDefault();
		var text = ui.text.value.trim();
		if (!text)
			return;
		ui.text.value = "";
		reply(text);
	});

	ui.text.addEventListener("keydown", function (ev) {
		if (ev.key === "Enter" && !ev.shiftKey) {
			ev.preventDefault();
			ui.compose.requestSubmit();
		}
	});

	/* Credentials: the URL fragment (then removed from the address bar),
	 * else this tab's session, else the form. */
	var frag = new URLSearchParams(location.hash.replace(/^#/, ""));
	var saved = null;
	try {
		saved = JSON.parse(sessionStorage.getItem(KEY));
	} catch (e) {
		saved = null;
	}
	if (frag.get("agent") && frag.get("token")) {
		ui.agentId.value = frag.get("agent");
		history.replaceState(null, "", location.pathname + location.search);
		start(frag.get("agent"), frag.get("token"));
	} else if (saved && saved.agent && saved.token) {
		ui.agentId.value = saved.agent;
		wantAvailable = !!saved.available;
		start(saved.agent, saved.token);
	} else {
		showLogin("");
	}
}());
