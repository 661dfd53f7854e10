/* agent.js - the agent desktop. Speaks docs/PROTOCOL.md on
 * ws(s)://<host>/ws/agent: logs in (form, sessionStorage, or the URL fragment
 * #agent=ID&token=TOKEN), sets presence (available, away, break with a
 * reason), shows offers (accept or reject before they expire), assigned
 * conversations and their transcripts, replies, closes with an outcome
 * (disposition), transfers to a queue or an agent with a note, ends wrap-up.
 * The header names the customer (name, customer id, language, queue); the
 * side panel lists the customer's earlier conversations and shows one,
 * read-only, on request. An agent who supervises others gets a "Team" panel:
 * their presence, load and open conversations (refreshed on request), and
 * any of those conversations' transcripts, read-only ("team" and "monitor";
 * the transcript shown is read again every 5 s, the team on Refresh). Shows when the customer
 * types and tells the customer
 * when the agent types (at most once per 2 s per conversation). Every
 * delivered item is acknowledged after it is displayed; items are
 * de-duplicated by seq because unacknowledged ones come again after a
 * reconnect. Typing notices and the items of an earlier conversation
 * ("history"), and the team and monitor frames, are not inbox items: they
 * carry no inbox seq and are not
 * acknowledged. Reconnects with backoff and logs in again (and restores the
 * presence the agent had chosen, when it was available or break). */
(function () {
	"use strict";

	var KEY = "omr.agent";
	var $ = function (id) { return document.getElementById(id); };
	var ui = {
		who: $("who"), status: $("status"), presence: $("presence"), logout: $("logout"),
		presenceBox: $("presence-box"), breakReason: $("break-reason"),
		wrapup: $("wrapup-done"), notice: $("notice"), offers: $("offer-list"),
		login: $("login"), agentId: $("agent-id"), token: $("token"),
		loginError: $("login-error"), desk: $("desk"), list: $("conv-list"),
		none: $("no-convs"), title: $("conv-title"), closeBtn: $("close-conv"),
		messages: $("messages"), compose: $("compose"), text: $("text"),
		meta: $("conv-meta"), metaCustomer: $("conv-customer-id"),
		metaLanguage: $("conv-language"), metaQueue: $("conv-queue"),
		transferBtn: $("transfer-conv"), closeForm: $("close-form"),
		disposition: $("disposition"), closeConfirm: $("close-confirm"),
		closeCancel: $("close-cancel"), typing: $("typing"), panel: $("customer-panel"),
		earlierList: $("earlier-list"), earlierNone: $("earlier-none"),
		historyView: $("history-view"), historyTitle: $("history-title"),
		historyClose: $("history-close"), historyStatus: $("history-status"),
		historyMessages: $("history-messages"), dialog: $("transfer-dialog"),
		transferForm: $("transfer-form"), toQueue: $("transfer-to-queue"),
		toAgent: $("transfer-to-agent"), target: $("transfer-target"),
		targetLabel: $("transfer-target-label"), queueList: $("transfer-queues"),
		note: $("transfer-note"), transferError: $("transfer-error"),
		transferLang: $("transfer-language"), currentLang: $("transfer-current-language"),
		transferSend: $("transfer-send"), transferCancel: $("transfer-cancel"),
		conversation: $("conversation"), team: $("team"), teamRefresh: $("team-refresh"),
		teamStatus: $("team-status"), teamList: $("team-list"),
		monitorView: $("monitor-view"), monitorTitle: $("monitor-title"),
		monitorSub: $("monitor-sub"), monitorRefresh: $("monitor-refresh"),
		monitorBack: $("monitor-back"), monitorStatus: $("monitor-status"),
		monitorMessages: $("monitor-messages")
	};

	var WRAPUP_KEY = "omr.agent.wrapup"; /* when the chat wrap-up ends (ms), across a reload */
	var NOTICE_MS = 8000;
	var TYPING_SHOW_MS = 4000;    /* "Customer is typing…" stays this long */
	var MONITOR_REFRESH_MS = 5000; /* a team conversation shown is read again this often */
	var TYPING_SEND_MS = 2000;    /* at most one typing notice per conversation per this */
	var RESEND_MS = 3000;         /* a reply refused as unavailable is sent again after this */
	var PROBE_MS = 5000;          /* a request unanswered this long: is the connection alive? */
	var KEEP_CLOSED = 5;          /* closed conversations the list keeps */
	var ID_RE = /^[A-Za-z0-9._:@-]{1,128}$/;
	var LANG_RE = /^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/;
	var REJECT_REASONS = [["", "No reason"], ["busy", "Busy"],
			      ["wrong-language", "Wrong language"], ["wrong-skill", "Wrong skill"],
			      ["other", "Other"]];

	var ws = null;
	var creds = null;       /* {agent, token} */
	var want = { presence: "away", reason: "" };  /* what the agent chose */
	var presence = "away";  /* what the server last said */
	var offers = {};        /* conversation_id -> {item, li, deadline, state, ...} */
	var tick = null;        /* countdown interval while offers are shown */
	var wrapupTimer = null;
	var wrapupUntil = 0;            /* when the wrap-up shown ends (ms) */
	var noticeTimer = null;
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
	var earlier = {};       /* earlier conversation id -> {items[], state, error} */
	var shownEarlier = null; /* the earlier conversation in the side panel */
	var team = null;        /* {agents: [{...agent, convs: []}], loading, error} */
	var monitored = null;   /* {conv, agent, items[], state, error}: the transcript shown */

	function setStatus(t) { ui.status.textContent = t; }

	/* The server re-delivers only unacknowledged items, so the page keeps
	 * what it showed (per tab) to survive a reload. */
	var CONVS_KEY = "omr.agent.convs";
	/* set when another tab or device took over: what this tab shows misses
	 * what that one read, so its next login asks for every held
	 * conversation again */
	var STALE_KEY = "omr.agent.stale";
	var KEEP_ITEMS = 200;

	function saveConvs() {
		var out = order.map(function (id) {
			var c = convs[id];
			return { id: c.id, name: c.name, lang: c.lang, queue: c.queue, closed: c.closed,
				 draft: id === current ? ui.text.value : c.draft || "",
				 customer_id: c.customerId, history: c.history,
				 transferred: c.transferred, unread: c.unread, away: c.away,
				 items: c.items.slice(-KEEP_ITEMS).map(function (it) {
					 return { type: it.type, seq: it.seq, id: it.id, from: it.from,
						  name: it.name, text: it.text, ts: it.ts,
						  language: it.language, event: it.event,
						  queue: it.queue, reason: it.reason,
						  status: it.status, pos: it.pos };
				 }) };
		});
		/* Offers are acknowledged once shown, so they are not delivered
		 * again: keep the open ones across a reload too. */
		var open = Object.keys(offers).map(function (id) {
			var o = offers[id];
			return { item: stripLi(o.item), deadline: o.deadline };
		});
		try {
			sessionStorage.setItem(CONVS_KEY, JSON.stringify({ agent: creds && creds.agent,
									   convs: out, offers: open,
									   current: current }));
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
		(data.convs || []).forEach(function (saved) {
			var c = conv(saved.id);
			c.name = saved.name;
			c.lang = saved.lang;
			c.queue = saved.queue || "";
			c.closed = saved.closed;
			c.customerId = saved.customer_id || "";
			c.history = Array.isArray(saved.history) ? saved.history : [];
			c.transferred = !!saved.transferred;
			c.away = !!saved.away;
			c.unread = saved.unread || 0;
			c.draft = typeof saved.draft === "string" ? saved.draft : "";
			saved.items.forEach(function (it) {
				if (it.seq)
					seen[it.seq] = true;
				it.li = lineFor(it);
				/* One of this agent's replies: as it stood (a pending one is
				 * sent again once logged in; one saved before replies had a
				 * status was acked). */
				if (it.from === "agent" && !it.seq) {
					if (it.status === "failed")
						it.li.classList.add("failed");
					else if (it.status !== "pending")
						it.li.classList.add("acked");
				}
				c.items.push(it);
			});
			renderConvEntry(c);
		});
		if (data.current && convs[data.current])
			select(data.current); /* the one the agent had open */
		else if (order.length)
			select(order[order.length - 1]);
		var until = 0;
		try {
			until = Number(sessionStorage.getItem(WRAPUP_KEY)) || 0;
		} catch (e) {
			until = 0;
		}
		showWrapup(until);
		(data.offers || []).forEach(function (saved) {
			if (saved.item && saved.item.seq)
				seen[saved.item.seq] = true;
			if (saved.item && saved.deadline && saved.deadline > Date.now())
				showOffer(saved.item, saved.deadline);
		});
	}

	function send(obj) {
		if (ws && ws.readyState === WebSocket.OPEN) {
			ws.send(JSON.stringify(obj));
			if (obj.id && pending[obj.id])
				pending[obj.id].at = Date.now();
			return true;
		}
		return false;
	}

	/* A connection the network lost without a word (no FIN, no RST) looks
	 * open to the browser until it gives up, minutes later; meanwhile the
	 * server has taken the agent for gone. The desktop pings when idle
	 * (liveness.js) and drops a connection whose ping goes unanswered (what
	 * was unanswered is sent again after the welcome). A request unanswered
	 * for PROBE_MS, with nothing heard from the server meanwhile, pings at
	 * once: a dead connection is found PROBE_MS + the ping's answer time
	 * after the request, and a server that holds requests while Redis is
	 * away (it answers pings) keeps its connection. */
	var heard = OmrLiveness.watch({
		socket: function () { return ws; }, /* a login on a dead path too */
		dead: dropDead
	});

	setInterval(function () {
		if (!ws || !loggedIn)
			return;
		var now = Date.now();
		var stuck = Object.keys(pending).some(function (rid) {
			return pending[rid].at && now - pending[rid].at > PROBE_MS;
		});
		if (stuck)
			heard.probe(PROBE_MS);
	}, 1000);

	function dropDead() {
		var old = ws;
		old.onclose = old.onmessage = null;
		try {
			old.close();
		} catch (e) {
			/* closing already */
		}
		onClosed("no answer from the server: reconnecting…");
	}

	function newId(prefix) {
		return prefix + "-" + Date.now().toString(36) + "-" + (nextId++);
	}

	function stripLi(item) {
		var copy = {};
		Object.keys(item).forEach(function (k) {
			if (k !== "li")
				copy[k] = item[k];
		});
		return copy;
	}

	/* A short message for the agent above the list (read by screen readers). */
	function notice(text) {
		clearTimeout(noticeTimer);
		ui.notice.textContent = text;
		noticeTimer = setTimeout(function () { ui.notice.textContent = ""; }, NOTICE_MS);
	}

	function updateEmpty() {
		ui.none.hidden = order.length > 0 || Object.keys(offers).length > 0;
	}

	function timeOf(ts) {
		var d = ts ? new Date(ts) : new Date();
		return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
	}

	/* ---- connection ---------------------------------------------------- */

	/* The conversations and offers this desktop shows: at login the server
	 * sends again what the agent holds that is not among them (one taken
	 * in another browser, a new browser). At most 1024 bytes of ids: any
	 * left out come again, and are shown once. */
	function shownIds() {
		var out = [], len = 0;
		order.filter(function (id) { return convs[id] && !convs[id].closed; })
			.concat(Object.keys(offers)).forEach(function (id) {
				if (len + id.length + 1 <= 1024) {
					out.push(id);
					len += id.length + 1;
				}
			});
		return out;
	}

	function connect() {
		clearTimeout(retryTimer);
		var proto = location.protocol === "https:" ? "wss://" : "ws://";
		ws = new WebSocket(proto + location.host + "/ws/agent");
		setStatus("connecting…");
		ws.onopen = function () {
			heard();
			send({ type: "login", v: 1, agent_id: creds.agent, token: creds.token,
			       conversations: isStale() ? [] : shownIds() });
		};
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
		ws.onclose = function () { onClosed("reconnecting…"); };
	}

	function onClosed(status) {
		ws = null;
		loggedIn = false;
		/* what was in flight is answered on no connection now (requests sent
		 * again after the welcome are timed again) */
		Object.keys(pending).forEach(function (rid) { delete pending[rid].at; });
		ui.presenceBox.hidden = true;
		if (stopped || !creds)
			return;
		setStatus(status);
		var delay = Math.min(backoff, 15000) * (0.75 + Math.random() / 2);
		backoff = Math.min(backoff * 2, 15000);
		retryTimer = setTimeout(connect, delay);
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
		case "event":
			onItem(msg);
			break;
		case "offer":
			onOffer(msg);
			break;
		case "revoked":
			onRevoked(msg);
			break;
		case "presence":
			onPresenceItem(msg);
			break;
		case "typing":
			onTyping(msg);
			break;
		case "history":
			onHistoryItem(msg);
			break;
		case "team":
			onTeamItem(msg);
			break;
		case "monitor":
			onMonitorItem(msg);
			break;
		case "error":
			onError(msg);
			break;
		}
	}

	function isStale() {
		try {
			return sessionStorage.getItem(STALE_KEY) === "1";
		} catch (e) {
			return false;
		}
	}

	function onWelcome(msg) {
		loggedIn = true;
		try {
			sessionStorage.removeItem(STALE_KEY); /* (the login asked for everything) */
		} catch (e) {
			/* no storage */
		}
		backoff = 500;
		saveCreds();
		ui.login.hidden = true;
		ui.desk.hidden = false;
		ui.logout.hidden = false;
		ui.presenceBox.hidden = false;
		ui.who.textContent = (msg.name || msg.agent_id) +
			(msg.languages && msg.languages.length ? " · " + msg.languages.join(", ") : "") +
			(msg.capacity !== undefined ? " · capacity " + msg.capacity : "");
		showPresence(msg.presence || "away", "");
		setStatus("online");
		if (want.presence !== "away" && presence !== want.presence)
			setPresence(want.presence, want.reason);
		/* a request lost with the old connection is asked again; an offer
		 * being answered is open again (the answer may be lost: the
		 * server says `revoked` or `assigned` if it was not) */
		resendReplies();
		Object.keys(pending).forEach(function (rid) {
			var p = pending[rid];
			if (p.kind === "accept" || p.kind === "reject") {
				delete pending[rid];
				if (offers[p.conv])
					offerState(p.conv, "open");
			}
		});
		if (team)
			team.loading = false;
		requestTeam();
		if (monitored) {
			monitored.state = "";
			requestMonitor();
		}
	}

	function onAck(msg) {
		var p = pending[msg.id];
		if (!p)
			return;
		delete pending[msg.id];
		if (p.kind === "presence") {
			showPresence(msg.presence, p.reason);
		} else if (p.kind === "message") {
			p.li.classList.add("acked");
			p.li.title = "";
			if (p.item) {
				p.item.status = "acked";
				/* its place in the transcript (a seq of the transcript, not
				 * of this desktop's inbox: kept apart) */
				p.item.pos = msg.seq || "";
			}
			saveConvs();
		} else if (p.kind === "accept") {
			offerState(p.conv, "accepted");
		} else if (p.kind === "reject") {
			dropOffer(p.conv, "Offer declined");
		} else if (p.kind === "wrapup") {
			hideWrapup();
			notice("Wrap-up ended");
		} else if (p.kind === "close") {
			if (current === p.conv)
				hideCloseForm(false);
		} else if (p.kind === "transfer") {
			var tc = convs[p.conv];
			if (tc) {
				tc.transferred = true;
				tc.closed = true;
				clearTyping(tc);
				saveConvs();
			}
			ui.transferSend.disabled = false;
			if (ui.dialog.open)
				ui.dialog.close();
			notice("Transferred to " + (p.to === "queue" ? "queue " : "agent ") + p.target);
			if (current === p.conv)
				select(p.conv);
		} else if (p.kind === "history") {
			historyLoaded(p.earlier, null);
		} else if (p.kind === "team") {
			teamLoaded(null);
		} else if (p.kind === "monitor") {
			monitorLoaded(p.conv, null, p.rid);
		}
	}

	function onError(msg) {
		if (msg.id && msg.id.indexOf("t-") === 0)
			return; /* a typing notice that did not go through: no matter */
		var p = msg.id ? pending[msg.id] : null;
		if (msg.code === "replaced") {
			stopped = true;
			try {
				sessionStorage.setItem(STALE_KEY, "1");
			} catch (e) {
				/* no storage: this tab forgets anyway */
			}
			setStatus("logged in elsewhere: this window is disconnected");
			return;
		}
		if (msg.code === "logged-out") {
			/* The token no longer works (revoked, reissued) or the agent is
			 * gone: log in again with a new token (the chats held stay
			 * this agent's for the grace period). */
			stopped = true;
			sessionStorage.removeItem(KEY);
			showLogin("Signed out: " + (msg.reason || "this session was ended") + ".");
			return;
		}
		if (msg.code === "unauthorized" && !loggedIn) {
			stopped = true;
			sessionStorage.removeItem(KEY);
			showLogin("Wrong agent id or token.");
			return;
		}
		if (p && p.kind === "message" && msg.code === "unavailable") {
			/* not stored (Redis refused or did not answer in time): the
			 * same id again, which the server stores once */
			delete pending[msg.id];
			p.li.title = "the server is busy: sending again…";
			setTimeout(function () {
				var c = convs[p.conv];
				if (c && !c.closed && p.item.status === "pending" && !pending[p.item.id])
					sendReply(c, p.item);
			}, RESEND_MS);
			return;
		}
		if (p) {
			delete pending[msg.id];
			if (p.li) {
				p.li.classList.add("failed");
				p.li.title = msg.reason || msg.code;
			}
			if (p.item) {
				p.item.status = "failed";
				saveConvs();
			}
			if (p.kind === "presence") {
				want = { presence: presence, reason: "" };
				showPresence(presence, "");
			} else if (p.kind === "accept" || p.kind === "reject") {
				if (msg.code === "not-assigned" || msg.code === "closed") {
					dropOffer(p.conv, "Offer no longer open");
					return;
				}
				offerState(p.conv, "open");
			} else if (p.kind === "wrapup") {
				ui.wrapup.disabled = false;
			} else if (p.kind === "close") {
				ui.closeConfirm.disabled = false;
			} else if (p.kind === "transfer") {
				ui.transferSend.disabled = false;
				const away = msg.code === "bad-request" &&
					/not logged in/.test(msg.reason || "");
				ui.transferError.textContent = away
					? "Not transferred to agent \u201c" + p.target + "\u201d: they are not " +
					  "logged in. Transfer it to a queue instead."
					: msg.code === "bad-request"
					? "Not transferred to " + (p.to === "agent" ? "agent" : "queue") +
					  " \u201c" + p.target + "\u201d: there is none by that name, or it " +
					  "cannot take this conversation (its language, skills or channel)." +
					  (p.language ? "" : " If the customer speaks another language, " +
					   "say which under \u201cCustomer's language\u201d.")
					: "Not transferred: " + (msg.reason || msg.code);
				ui.transferError.hidden = false;
				return;
			} else if (p.kind === "history") {
				historyLoaded(p.earlier, msg.reason || msg.code);
				return;
			} else if (p.kind === "team") {
				teamLoaded(msg.reason || msg.code);
				return;
			} else if (p.kind === "monitor") {
				monitorLoaded(p.conv, msg.code === "not-assigned"
					? "you may not read this conversation (any more)"
					: msg.reason || msg.code, p.rid);
				return;
			}
		}
		/* the status line says whether this desktop is online: an error of
		 * one request is a notice (a failed reply is marked on the reply) */
		notice("Error: " + (msg.reason || msg.code));
	}

	/* ---- conversations ------------------------------------------------- */

	function conv(id) {
		if (convs[id])
			return convs[id];
		var c = { id: id, name: "", lang: "", queue: "", items: [], unread: 0,
			  closed: false, customerId: "", history: [], transferred: false, away: false,
			  typing: false, typingTimer: null, lastTypingSent: 0 };
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
		pruneClosed();
		updateEmpty();
		li.scrollIntoView({ block: "nearest" }); /* a new one is seen, at the list's end */
		return c;
	}

	/* A day's closed conversations would push new ones out of sight: the
	 * list keeps the last KEEP_CLOSED of them (and the one being read). */
	function pruneClosed() {
		var closed = order.filter(function (k) { return convs[k].closed && k !== current; });
		closed.slice(0, Math.max(0, closed.length - KEEP_CLOSED)).forEach(function (k) {
			convs[k].li.remove();
			delete convs[k];
			order.splice(order.indexOf(k), 1);
		});
	}

	function renderConvEntry(c) {
		c.li.textContent = "";
		var n = document.createElement("span");
		n.className = "name";
		n.textContent = c.name || ("Customer " + c.id.slice(0, 6));
		var meta = document.createElement("span");
		meta.className = "meta";
		meta.textContent = (c.lang || "?") + (c.queue ? " · " + c.queue : "") +
			(c.transferred ? " · transferred" : c.closed ? " · closed" :
			 c.away ? " · customer left" : "") +
			(c.typing ? " · typing…" : "") +
			(c.unread ? " · " + c.unread + " new" : "");
		c.li.appendChild(n);
		c.li.appendChild(meta);
		c.li.classList.toggle("selected", current === c.id && ui.monitorView.hidden);
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
			var c = convs[item.conversation_id];
			omrText.show(text, item.text, c && c.lang);
		} else {
			li.className = "event";
			if (item.type === "assigned")
				text.textContent = "Conversation assigned" +
					(item.language ? " (" + item.language + ")" : "") +
					(item.queue ? " from queue " + item.queue : "");
			else if (item.type === "closed")
				text.textContent = item.reason === "transferred" ? "Conversation transferred"
					: item.reason === "admin" ? "Conversation ended by the site" +
						(item.note ? ": " + item.note : "")
					: "Conversation closed";
			else if (item.event === "taken-back")
				text.textContent = "Taken back" + (item.reason ? " (" + item.reason + ")" : "") +
					": this desktop was away too long, and the conversation went back " +
					"to the queue";
			else if (item.event === "transferred")
				text.textContent = "Transferred to you by " + (item.name || "another agent") +
					(item.text ? ". Note: " + item.text : " (no note)");
			else if (item.event === "customer-left")
				text.textContent = "The customer left: the chat page was closed or lost " +
					"its connection. They may come back; close the conversation when " +
					"you are done";
			else if (item.event === "customer-back")
				text.textContent = "The customer is back";
			else
				text.textContent = "Event: " + (item.event || "?");
		}
		li.appendChild(who);
		li.appendChild(text);
		var t = document.createElement("time");
		t.textContent = timeOf(item.ts);
		li.appendChild(t);
		return li;
	}

	function select(id) {
		var changed = current !== id || !ui.monitorView.hidden;
		/* one reply box for all: each conversation keeps its own draft (a
		 * half-written reply never follows the agent to another customer) */
		if (current !== id) {
			if (current && convs[current])
				convs[current].draft = ui.text.value;
			ui.text.value = convs[id].draft || "";
		}
		current = id;
		hideMonitor();
		var c = convs[id];
		c.unread = 0;
		ui.messages.textContent = "";
		c.items.forEach(function (it) { ui.messages.appendChild(it.li || lineFor(it)); });
		ui.messages.scrollTop = ui.messages.scrollHeight;
		renderHead(c);
		/* focus on a control that a close hides goes to the conversation's
		 * entry in the list (not the page's top) */
		var act = document.activeElement;
		var lose = c.closed && act && (ui.compose.contains(act) || ui.closeForm.contains(act) ||
					       act === ui.closeBtn || act === ui.transferBtn);
		ui.compose.hidden = c.closed;
		ui.closeBtn.hidden = c.closed;
		ui.transferBtn.hidden = c.closed;
		if (changed || c.closed)
			hideCloseForm(false);
		showTyping();
		renderEarlier(c, changed);
		order.forEach(function (k) { renderConvEntry(convs[k]); });
		saveConvs(); /* (which one is read, and that it is read: across a reload) */
		if (!c.closed && changed)
			ui.text.focus();
		else if (lose)
			c.li.focus();
	}

	/* The header: who the customer is. */
	function renderHead(c) {
		ui.title.textContent = c.name || ("Customer " + c.id.slice(0, 6));
		ui.title.title = "Conversation " + c.id;
		ui.meta.hidden = false;
		ui.metaCustomer.textContent = c.customerId || "none given";
		ui.metaCustomer.title = c.customerId || "";
		ui.metaLanguage.textContent = c.lang || "?";
		ui.metaQueue.textContent = c.queue || "none";
	}

	/* Whether shown item it comes after an item of stream id seq: a reply
	 * not stored yet does; a stored one by its place in the transcript. */
	function laterThan(it, seq) {
		if (it.from === "agent" && it.type === "message" && !it.seq && !it.pos)
			return it.status === "pending";
		var at = it.pos || it.seq;
		return !!at && seqBefore(seq, at);
	}

	/* Stream ids "ms-n": whether a comes before b. */
	function seqBefore(a, b) {
		var x = a.split("-"), y = b.split("-");
		return Number(x[0]) < Number(y[0]) ||
			(Number(x[0]) === Number(y[0]) && Number(x[1]) < Number(y[1]));
	}

	function onItem(item) {
		if (!item.seq || !item.conversation_id)
			return;
		if (!seen[item.seq]) {
			seen[item.seq] = true;
			var accepted = false;
			if (item.type === "assigned" && offers[item.conversation_id]) {
				accepted = true;
				removeOffer(item.conversation_id);
			}
			var c = conv(item.conversation_id);
			if (item.type === "assigned")
				hideWrapup(); /* new work of the channel: its wrap-up is over */
			if (item.type === "assigned") {
				c.name = item.customer_name || c.name;
				c.lang = item.language || c.lang;
				c.queue = item.queue || c.queue;
				c.customerId = item.customer_id || c.customerId;
				c.closed = false; /* it may come back, e.g. transferred to us */
				c.transferred = false;
				c.away = false;
				if (Array.isArray(item.history))
					c.history = item.history.filter(function (h) {
						return typeof h === "string" && ID_RE.test(h) && h !== c.id;
					});
			} else if (item.type === "closed") {
				/* a transfer, or an end by the site, gives no wrap-up:
				 * nothing to end early */
				if (!c.closed && item.reason !== "transferred" && item.reason !== "admin" &&
				    item.wrapup_until_ms)
					showWrapup(item.wrapup_until_ms);
				if (item.reason === "transferred")
					c.transferred = true;
				c.closed = true;
				clearTyping(c);
			} else if (item.type === "message" && item.from === "customer") {
				clearTyping(c);
			} else if (item.event === "customer-left" || item.event === "customer-back") {
				c.away = item.event === "customer-left";
				clearTyping(c);
			}
			/* A message shown already (the agent's own reply; or, when the
			 * conversation comes back to this agent, its transcript again
			 * under new seqs): each (sender, id) once. */
			var dup = item.type === "message" && !!item.id &&
				c.items.some(function (it) {
					return it.type === "message" && it.id === item.id &&
						(it.from === "agent") === (item.from === "agent");
				});
			/* ... and an assignment or event sent again with the transcript
			 * (a login that asked for everything held): the same ts */
			if (!dup && (item.type === "assigned" || item.type === "event") && item.ts)
				dup = c.items.some(function (it) {
					return it.type === item.type && it.ts === item.ts &&
						it.event === item.event;
				});
			if (!dup) {
				item.li = lineFor(item);
				/* in transcript order: a customer's message that reached the
				 * server before a reply this desktop sent (or still has to
				 * send: it was cut off) goes above that reply */
				var at = c.items.length;
				while (at > 0 && laterThan(c.items[at - 1], item.seq))
					at--;
				var next = c.items[at];
				c.items.splice(at, 0, item);
				if (current === c.id) {
					if (next && next.li && next.li.parentNode === ui.messages)
						ui.messages.insertBefore(item.li, next.li);
					else
						ui.messages.appendChild(item.li);
					ui.messages.scrollTop = ui.messages.scrollHeight;
				} else if (item.type === "message") {
					c.unread++;
				}
			}
			/* An offer the agent accepted opens at once, and so does a new
			 * conversation when the one shown is over; not while the agent
			 * reads a team member's conversation (the list says it). */
			var idle = !current || (convs[current] && convs[current].closed &&
						item.type === "assigned");
			var monitoring = !ui.monitorView.hidden;
			if (monitoring && item.type === "message" && current === c.id)
				c.unread++;
			if (monitoring && item.type === "assigned" && !accepted)
				notice("New conversation: " + (c.name || "customer"));
			if (accepted || (!monitoring && (idle || current === c.id)))
				select(c.id);
			else
				renderConvEntry(c);
		}
		saveConvs();
		/* Displayed (or already shown): confirm it, so it is not delivered again. */
		send({ type: "ack", seq: item.seq });
	}

	/* ---- offers -------------------------------------------------------- */

	/* When the offer lapses, on this machine's clock: the server's deadline,
	 * but never later than the offer's own duration from now (the clocks may
	 * disagree; the server decides, and says so with "revoked"). */
	function offerDeadline(item) {
		if (typeof item.expires_ms !== "number")
			return 0;
		var left = item.expires_ms - Date.now();
		if (typeof item.ts === "number")
			left = Math.min(left, item.expires_ms - item.ts);
		return Date.now() + Math.max(0, left);
	}

	function countdownText(o) {
		if (!o.deadline)
			return "waiting for your answer";
		var s = Math.ceil((o.deadline - Date.now()) / 1000);
		if (s <= 0)
			return "expiring…";
		return "expires in " + (s >= 60 ? Math.floor(s / 60) + ":" + ("0" + s % 60).slice(-2)
				       : s + " s");
	}

	function tickOffers() {
		var ids = Object.keys(offers);
		ids.forEach(function (id) {
			var o = offers[id];
			o.timer.textContent = countdownText(o);
			o.li.classList.toggle("urgent", o.deadline > 0 &&
					      o.deadline - Date.now() <= 10000);
		});
		if (!ids.length) {
			clearInterval(tick);
			tick = null;
		}
	}

	function el(tag, cls, text) {
		var e = document.createElement(tag);
		if (cls)
			e.className = cls;
		if (text !== undefined)
			e.textContent = text;
		return e;
	}

	function showOffer(item, deadline) {
		var id = item.conversation_id;
		if (offers[id] || (convs[id] && !convs[id].closed))
			return;
		var who = item.customer_name || ("Customer " + id.slice(0, 6));
		var li = el("li", "offer");
		li.setAttribute("role", "group");
		li.setAttribute("aria-label", "Offer: " + who);
		var head = el("div", "offer-head");
		head.appendChild(el("span", "badge", "Offer"));
		head.appendChild(el("span", "name", who));
		li.appendChild(head);
		li.appendChild(el("span", "meta", (item.language || "?") +
				  (item.queue ? " · " + item.queue : "")));
		var timer = el("span", "countdown");
		li.appendChild(timer);

		var actions = el("div", "offer-actions");
		var accept = el("button", "accept", "Accept");
		accept.type = "button";
		var reject = el("button", "reject", "Reject");
		reject.type = "button";
		actions.appendChild(accept);
		actions.appendChild(reject);
		li.appendChild(actions);

		var form = el("div", "reject-form");
		form.hidden = true;
		var selId = "reject-reason-" + id;
		var label = el("label", "sr-only", "Reason for rejecting");
		label.htmlFor = selId;
		var sel = el("select", "reject-reason");
		sel.id = selId;
		REJECT_REASONS.forEach(function (r) {
			var opt = el("option", "", r[1]);
			opt.value = r[0];
			sel.appendChild(opt);
		});
		var confirm = el("button", "reject", "Reject");
		confirm.type = "button";
		var cancel = el("button", "secondary", "Cancel");
		cancel.type = "button";
		form.appendChild(label);
		form.appendChild(sel);
		form.appendChild(confirm);
		form.appendChild(cancel);
		li.appendChild(form);

		var o = { item: item, li: li, timer: timer, accept: accept, reject: reject,
			  form: form, sel: sel, confirm: confirm, actions: actions,
			  deadline: deadline !== undefined ? deadline : offerDeadline(item),
			  state: "open" };
		offers[id] = o;

		accept.addEventListener("click", function () { answerOffer(id, "accept"); });
		reject.addEventListener("click", function () {
			actions.hidden = true;
			form.hidden = false;
			sel.focus();
		});
		cancel.addEventListener("click", function () {
			form.hidden = true;
			actions.hidden = false;
			reject.focus();
		});
		confirm.addEventListener("click", function () { answerOffer(id, "reject"); });
		form.addEventListener("keydown", function (ev) {
			if (ev.key === "Escape") {
				ev.preventDefault();
				cancel.click();
			} else if (ev.key === "Enter" && ev.target === sel) {
				ev.preventDefault();
				confirm.click();
			}
		});

		ui.offers.appendChild(li);
		updateEmpty();
		tickOffers();
		if (!tick)
			tick = setInterval(tickOffers, 1000);
	}

	function offerState(id, state) {
		var o = offers[id];
		if (!o)
			return;
		o.state = state;
		var busy = state !== "open";
		o.accept.disabled = busy;
		o.reject.disabled = busy;
		o.confirm.disabled = busy;
		o.li.classList.toggle("pending", busy);
		if (state === "accepted")
			o.timer.textContent = "accepted, opening…";
	}

	function answerOffer(id, kind) {
		var o = offers[id];
		if (!o || o.state !== "open")
			return;
		var rid = newId(kind === "accept" ? "o" : "x");
		var frame = { type: kind, conversation_id: id, id: rid };
		if (kind === "reject" && o.sel.value)
			frame.reason = o.sel.value;
		pending[rid] = { kind: kind, conv: id };
		if (!send(frame)) {
			delete pending[rid];
			setStatus("not connected: try again");
			return;
		}
		offerState(id, kind === "accept" ? "accepting" : "rejecting");
	}

	/* Takes the card away; keeps the focus in the list when it was on it. */
	function removeOffer(id) {
		var o = offers[id];
		if (!o)
			return null;
		var hadFocus = o.li.contains(document.activeElement);
		delete offers[id];
		o.li.remove();
		if (hadFocus) {
			var next = ui.offers.querySelector("button:not([disabled])") ||
				ui.list.querySelector("li") || ui.presence;
			if (next)
				next.focus();
		}
		updateEmpty();
		saveConvs();
		return o;
	}

	function dropOffer(id, text) {
		var o = removeOffer(id);
		if (o)
			notice(text + ": " + (o.item.customer_name || "customer"));
	}

	function onOffer(item) {
		if (!item.seq || !item.conversation_id)
			return;
		if (!seen[item.seq]) {
			seen[item.seq] = true;
			showOffer(item);
			var o = offers[item.conversation_id];
			if (o)
				notice("New offer: " + (item.customer_name || "customer") +
				       (item.language ? " (" + item.language + ")" : ""));
			saveConvs();
		}
		send({ type: "ack", seq: item.seq });
	}

	function onRevoked(item) {
		if (!item.seq || !item.conversation_id)
			return;
		if (!seen[item.seq]) {
			seen[item.seq] = true;
			var r = item.reason || "";
			var c = convs[item.conversation_id];
			if (!offers[item.conversation_id] && c && !c.closed) {
				takenBack(c, item);
			} else {
				dropOffer(item.conversation_id, r === "timeout" ? "Offer expired"
					  : r.indexOf("rejected") === 0 ? "Offer declined"
					  : "Offer taken back");
			}
		}
		send({ type: "ack", seq: item.seq });
	}

	/* A conversation of this agent went back to routing (its desktop was away
	 * longer than the grace period): it is over here, without wrap-up. */
	function takenBack(c, item) {
		c.closed = true;
		clearTyping(c);
		var ev = { type: "event", event: "taken-back", reason: item.reason,
			   conversation_id: c.id, ts: item.ts };
		ev.li = lineFor(ev);
		c.items.push(ev);
		notice("Taken back: " + (c.name || "customer"));
		if (current === c.id && ui.monitorView.hidden)
			select(c.id); /* (not while reading a team member's conversation) */
		else
			renderConvEntry(c);
		saveConvs();
	}

	/* ---- typing -------------------------------------------------------- */

	function showTyping() {
		var c = current ? convs[current] : null;
		ui.typing.hidden = !(c && c.typing && !c.closed);
	}

	function clearTyping(c) {
		clearTimeout(c.typingTimer);
		c.typingTimer = null;
		if (c.typing) {
			c.typing = false;
			renderConvEntry(c);
			showTyping();
		}
	}

	function onTyping(msg) {
		var c = msg.conversation_id ? convs[msg.conversation_id] : null;
		if (!c || c.closed)
			return;
		c.typing = true;
		clearTimeout(c.typingTimer);
		c.typingTimer = setTimeout(function () { clearTyping(c); }, TYPING_SHOW_MS);
		renderConvEntry(c);
		showTyping();
	}

	/* The agent types in the current conversation: tell the customer. */
	function sendTyping() {
		var c = current ? convs[current] : null;
		var now = Date.now();
		if (!c || c.closed || now - c.lastTypingSent < TYPING_SEND_MS)
			return;
		if (send({ type: "typing", conversation_id: c.id, id: newId("t") }))
			c.lastTypingSent = now;
	}

	/* ---- closing with an outcome --------------------------------------- */

	function showCloseForm() {
		var c = convs[current];
		if (!c || c.closed)
			return;
		ui.closeForm.hidden = false;
		ui.closeConfirm.disabled = false;
		ui.closeBtn.setAttribute("aria-expanded", "true");
		ui.disposition.focus();
	}

	/* Focus that was in the form stays usable: on the Close button, or, once
	 * the conversation is closed, on its entry in the list (not the page's
	 * top). */
	function hideCloseForm(focusButton) {
		var had = ui.closeForm.contains(document.activeElement);
		ui.closeForm.hidden = true;
		ui.closeBtn.setAttribute("aria-expanded", "false");
		var c = convs[current];
		if ((focusButton || had) && !ui.closeBtn.hidden)
			ui.closeBtn.focus();
		else if (had && c)
			c.li.focus();
	}

	function closeConversation() {
		var c = convs[current];
		if (!c || c.closed)
			return;
		var id = newId("r");
		var frame = { type: "close", conversation_id: c.id, id: id };
		if (ui.disposition.value)
			frame.disposition = ui.disposition.value;
		pending[id] = { kind: "close", conv: c.id };
		if (send(frame))
			ui.closeConfirm.disabled = true;
		else {
			delete pending[id];
			setStatus("not connected: try again");
		}
	}

	/* ---- transfer ------------------------------------------------------- */

	function transferKind() {
		return ui.toAgent.checked ? "agent" : "queue";
	}

	function updateTransferKind() {
		var agent = transferKind() === "agent";
		ui.targetLabel.textContent = agent ? "Agent id" : "Queue name";
		if (agent)
			ui.target.removeAttribute("list");
		else
			ui.target.setAttribute("list", "transfer-queues");
	}

	function openTransfer() {
		var c = convs[current];
		if (!c || c.closed)
			return;
		/* the queues this desktop has seen, as suggestions */
		var seenQueues = {};
		order.forEach(function (k) {
			if (convs[k].queue)
				seenQueues[convs[k].queue] = true;
		});
		ui.queueList.textContent = "";
		Object.keys(seenQueues).sort().forEach(function (q) {
			var o = document.createElement("option");
			o.value = q;
			ui.queueList.appendChild(o);
		});
		ui.transferForm.reset();
		ui.currentLang.textContent = c.lang || "the one shown";
		updateTransferKind();
		ui.transferError.hidden = true;
		ui.transferSend.disabled = false;
		ui.dialog.dataset.conv = c.id;
		ui.dialog.showModal();
		ui.target.focus();
	}

	function sendTransfer() {
		var conv = ui.dialog.dataset.conv;
		var c = convs[conv];
		var target = ui.target.value.trim();
		var kind = transferKind();
		if (!c || c.closed) {
			ui.dialog.close();
			return;
		}
		if (!ID_RE.test(target)) {
			ui.transferError.textContent = kind === "agent"
				? "Enter the agent's id." : "Enter a queue name.";
			ui.transferError.hidden = false;
			ui.target.focus();
			return;
		}
		var id = newId("x");
		var frame = { type: "transfer", conversation_id: conv, id: id };
		frame[kind] = target;
		var note = ui.note.value.trim();
		if (note)
			frame.note = note;
		var lang = ui.transferLang.value.trim();
		if (lang) {
			if (!LANG_RE.test(lang)) {
				ui.transferError.textContent = "Enter a language tag such as es or pt-BR.";
				ui.transferError.hidden = false;
				ui.transferLang.focus();
				return;
			}
			frame.language = lang;
		}
		pending[id] = { kind: "transfer", conv: conv, to: kind, target: target,
			language: lang };
		if (!send(frame)) {
			delete pending[id];
			ui.transferError.textContent = "Not connected: try again.";
			ui.transferError.hidden = false;
			return;
		}
		ui.transferError.hidden = true;
		ui.transferSend.disabled = true;
	}

	/* ---- earlier conversations ------------------------------------------ */

	function dateOf(ts) {
		return new Date(ts).toLocaleString([], { year: "numeric", month: "short",
			day: "numeric", hour: "2-digit", minute: "2-digit" });
	}

	function earlierLabel(id, n) {
		var h = earlier[id];
		var first = h && h.items && h.items.length ? h.items[0] : null;
		return (first && first.ts ? dateOf(first.ts) : "Conversation " + n) +
			" · " + id.slice(0, 8);
	}

	/* The side panel: the current conversation's customer's earlier ones. */
	function renderEarlier(c, changed) {
		ui.panel.hidden = false;
		ui.earlierList.textContent = "";
		(c.history || []).forEach(function (id, i) {
			var li = document.createElement("li");
			var b = document.createElement("button");
			b.type = "button";
			b.id = "earlier-" + id;
			b.className = "earlier";
			b.dataset.earlier = id;
			b.textContent = earlierLabel(id, i + 1);
			b.setAttribute("aria-pressed", shownEarlier === id ? "true" : "false");
			b.addEventListener("click", function () { showEarlier(id); });
			li.appendChild(b);
			ui.earlierList.appendChild(li);
		});
		ui.earlierNone.hidden = (c.history || []).length > 0;
		if (changed) {
			shownEarlier = null;
			ui.historyView.hidden = true;
		}
	}

	function historyLine(it) {
		var li = document.createElement("li");
		var who = document.createElement("span");
		who.className = "who";
		var text = document.createElement("span");
		text.className = "text";
		if (it.kind === "event") {
			li.className = "event";
			var ev = it.event || "event";
			text.textContent = ev === "assigned" ? (it.name || "An agent") + " joined"
				: ev === "closed" ? "Conversation closed"
				: ev === "transferred" ? "Transferred by " + (it.name || "an agent") +
					(it.text ? ": " + it.text : "")
				: ev === "requeued" ? "Agent lost; back in the queue"
				: "Event: " + ev;
		} else {
			var agent = it.from === "agent";
			li.className = agent ? "me" : "them";
			who.textContent = it.name || (agent ? "Agent" : "Customer");
			omrText.show(text, it.text || ""); /* (that conversation's language is not known) */
		}
		li.appendChild(who);
		li.appendChild(text);
		var t = document.createElement("time");
		t.textContent = it.ts ? dateOf(it.ts) : "";
		li.appendChild(t);
		return li;
	}

	function renderHistory(id) {
		var h = earlier[id];
		ui.historyTitle.textContent = "Earlier conversation " + id.slice(0, 8);
		ui.historyMessages.textContent = "";
		if (!h || h.state === "loading") {
			ui.historyStatus.textContent = "Loading…";
			return;
		}
		if (h.state === "failed") {
			ui.historyStatus.textContent = "Could not load it: " + h.error;
			return;
		}
		ui.historyStatus.textContent = h.items.length ? h.items.length + " items, read-only"
			: "This conversation holds nothing.";
		h.items.forEach(function (it) { ui.historyMessages.appendChild(historyLine(it)); });
	}

	function showEarlier(id) {
		var c = convs[current];
		if (!c)
			return;
		shownEarlier = id;
		ui.historyView.hidden = false;
		Array.prototype.forEach.call(ui.earlierList.querySelectorAll("button"), function (b) {
			b.setAttribute("aria-pressed", b.dataset.earlier === id ? "true" : "false");
		});
		var h = earlier[id];
		if (!h || h.state === "failed") {
			var rid = newId("h");
			earlier[id] = { items: [], state: "loading", error: "" };
			pending[rid] = { kind: "history", conv: c.id, earlier: id };
			if (!send({ type: "history", conversation_id: c.id, earlier: id, id: rid })) {
				delete pending[rid];
				earlier[id] = { items: [], state: "failed", error: "not connected" };
			}
		}
		renderHistory(id);
	}

	/* An item of an earlier conversation; the ack of the request ends them. */
	function onHistoryItem(msg) {
		var h = msg.conversation_id ? earlier[msg.conversation_id] : null;
		if (!h || h.state !== "loading")
			return;
		if (!h.items.some(function (it) { return it.seq === msg.seq; }))
			h.items.push(msg);
	}

	function historyLoaded(id, error) {
		var h = earlier[id];
		if (!h)
			return;
		h.state = error ? "failed" : "loaded";
		h.error = error || "";
		if (error)
			h.items = [];
		var b = document.getElementById("earlier-" + id);
		var c = current ? convs[current] : null;
		if (b && !error)
			b.textContent = earlierLabel(id, c ? c.history.indexOf(id) + 1 : 1);
		if (shownEarlier === id)
			renderHistory(id);
	}

	/* ---- the team (supervisors) ------------------------------------------ */

	/* Asks for the snapshot of the agents this one supervises; the panel
	 * shows only when there is at least one. */
	function requestTeam() {
		if (team && team.loading)
			return;
		var rid = newId("tm");
		team = { agents: team ? team.agents : [], next: [], loading: true, error: "" };
		pending[rid] = { kind: "team" };
		if (!send({ type: "team", id: rid })) {
			delete pending[rid];
			team.loading = false;
			team.error = "not connected";
		}
		renderTeam();
	}

	/* One item of the snapshot: an agent, then the conversations it holds. */
	function onTeamItem(msg) {
		if (!team || !team.loading || !msg.agent_id)
			return;
		if (msg.kind === "agent") {
			team.next.push({ id: msg.agent_id, name: msg.name || msg.agent_id,
					 presence: msg.presence || "offline", reason: msg.reason || "",
					 load: msg.load || {}, capacity: msg.capacity || {}, convs: [] });
		} else if (msg.kind === "conversation" && msg.conversation_id) {
			var a = team.next.filter(function (x) { return x.id === msg.agent_id; })[0];
			if (a)
				a.convs.push(msg);
		}
	}

	function teamLoaded(error) {
		if (!team)
			return;
		team.loading = false;
		team.error = error || "";
		if (!error)
			team.agents = team.next;
		team.next = [];
		renderTeam();
	}

	function loadText(a) {
		var parts = [];
		["chat", "email", "voice"].forEach(function (ch) {
			var l = a.load[ch] || 0, c = a.capacity[ch] || 0;
			if (l || c)
				parts.push(ch + " " + l + "/" + c);
		});
		return parts.join(" · ") || "no capacity";
	}

	function teamConvButton(a, c) {
		var b = el("button", "team-conv");
		b.type = "button";
		b.dataset.conv = c.conversation_id;
		b.setAttribute("aria-pressed", monitored && monitored.conv === c.conversation_id
			? "true" : "false");
		b.appendChild(el("span", "name", c.customer_name || ("Customer " +
			c.conversation_id.slice(0, 6))));
		b.appendChild(el("span", "meta", (c.language || "?") +
			(c.queue ? " · " + c.queue : "") + (c.state ? " · " + c.state : "")));
		b.title = "Read the conversation of " + a.name + " (read-only)";
		b.addEventListener("click", function () { showMonitor(a, c); });
		return b;
	}

	function renderTeam() {
		var agents = team ? team.agents : [];
		ui.team.hidden = agents.length === 0;
		/* not disabled while loading: that would drop the keyboard focus */
		ui.team.setAttribute("aria-busy", team && team.loading ? "true" : "false");
		ui.teamStatus.textContent = team && team.loading ? "Loading…"
			: team && team.error ? "Could not refresh: " + team.error
			: "As of " + timeOf(Date.now()) + " (not live: refresh to update)";
		var focused = document.activeElement && ui.teamList.contains(document.activeElement)
			? document.activeElement.dataset.conv : null;
		ui.teamList.textContent = "";
		agents.forEach(function (a) {
			var li = el("li", "team-agent");
			var head = el("div", "team-agent-head");
			head.appendChild(el("span", "name", a.name));
			var p = el("span", "team-presence " + a.presence, a.presence +
				   (a.reason ? " (" + a.reason + ")" : ""));
			head.appendChild(p);
			li.appendChild(head);
			li.appendChild(el("span", "meta", loadText(a)));
			if (!a.convs.length)
				li.appendChild(el("span", "meta", "No open conversations"));
			var ul = el("ul", "team-convs");
			ul.setAttribute("aria-label", "Conversations of " + a.name);
			a.convs.forEach(function (c) {
				var cli = el("li");
				cli.appendChild(teamConvButton(a, c));
				ul.appendChild(cli);
			});
			li.appendChild(ul);
			ui.teamList.appendChild(li);
		});
		if (focused) {
			var again = ui.teamList.querySelector('button[data-conv="' + focused + '"]');
			(again || ui.teamRefresh).focus();
		}
	}

	/* Shows conversation c of team member a, read-only, instead of the
	 * agent's own conversation. */
	function showMonitor(a, c) {
		monitored = { conv: c.conversation_id, agent: a.name,
			      customer: c.customer_name || "", items: [], state: "loading",
			      error: "" };
		ui.conversation.hidden = true;
		ui.panel.hidden = true;
		ui.monitorView.hidden = false;
		order.forEach(function (k) { renderConvEntry(convs[k]); });
		Array.prototype.forEach.call(ui.teamList.querySelectorAll("button.team-conv"),
			function (b) {
				b.setAttribute("aria-pressed", b.dataset.conv === monitored.conv
					? "true" : "false");
			});
		requestMonitor();
	}

	/* Reads the monitored transcript again. quiet: the periodic re-read of
	 * a loaded one, which keeps what is shown until the answer is in. */
	function requestMonitor(quiet) {
		if (!monitored || (monitored.state === "loading" && monitored.sent) ||
		    (quiet === true && (monitored.state !== "loaded" || monitored.rereading)))
			return;
		monitored.sent = true;
		var rid = newId("mo");
		if (quiet === true) {
			monitored.rereading = [];
		} else {
			monitored.items = [];
			monitored.rereading = null;
			monitored.state = "loading";
		}
		monitored.rid = rid; /* only the latest read's answer counts */
		pending[rid] = { kind: "monitor", conv: monitored.conv, rid: rid };
		if (!send({ type: "monitor", conversation_id: monitored.conv, id: rid })) {
			delete pending[rid];
			monitored.rereading = null;
			if (quiet === true)
				return;
			monitored.state = "failed";
			monitored.error = "not connected";
		}
		renderMonitor();
	}

	function onMonitorItem(msg) {
		if (!monitored || msg.conversation_id !== monitored.conv)
			return;
		var into = monitored.rereading || (monitored.state === "loading" ? monitored.items : null);
		if (into && !into.some(function (it) { return it.seq === msg.seq; }))
			into.push(msg);
	}

	function monitorLoaded(conv, error, rid) {
		if (!monitored || monitored.conv !== conv || (rid && rid !== monitored.rid))
			return;
		if (monitored.rereading) {
			var grew = !error && monitored.rereading.length !== monitored.items.length;
			if (!error)
				monitored.items = monitored.rereading;
			monitored.rereading = null;
			monitored.readAt = Date.now();
			renderMonitor(!grew);
			return;
		}
		monitored.state = error ? "failed" : "loaded";
		monitored.error = error || "";
		monitored.readAt = Date.now();
		renderMonitor();
	}

	/* While a team conversation is shown, it is read again every
	 * MONITOR_REFRESH_MS (until it is closed). */
	setInterval(function () {
		if (monitored && !ui.monitorView.hidden &&
		    !monitored.items.some(function (it) { return it.event === "closed"; }))
			requestMonitor(true);
	}, MONITOR_REFRESH_MS);

	/* keepScroll: the same items again; the reader's place stays. */
	function renderMonitor(keepScroll) {
		var m = monitored;
		var top = ui.monitorMessages.scrollTop;
		ui.monitorTitle.textContent = m.customer || ("Customer " + m.conv.slice(0, 6));
		ui.monitorTitle.title = "Conversation " + m.conv;
		ui.monitorSub.textContent = "Agent: " + m.agent;
		ui.monitorView.setAttribute("aria-busy", m.state === "loading" ? "true" : "false");
		ui.monitorMessages.textContent = "";
		if (m.state === "loading") {
			ui.monitorStatus.textContent = "Loading…";
			return;
		}
		if (m.state === "failed") {
			ui.monitorStatus.textContent = "Could not load it: " + m.error;
			return;
		}
		var closed = m.items.some(function (it) { return it.event === "closed"; });
		ui.monitorStatus.textContent = m.items.length + " items as of " +
			timeOf(m.readAt || Date.now()) + (closed ? "; the conversation is closed"
			: "; read again every " + MONITOR_REFRESH_MS / 1000 + " s");
		m.items.forEach(function (it) { ui.monitorMessages.appendChild(historyLine(it)); });
		ui.monitorMessages.scrollTop = keepScroll === true ? top
			: ui.monitorMessages.scrollHeight;
	}

	/* Back to the agent's own conversation. */
	function hideMonitor() {
		if (ui.monitorView.hidden)
			return;
		ui.monitorView.hidden = true;
		ui.conversation.hidden = false;
		ui.panel.hidden = !current;
		var was = monitored;
		monitored = null;
		Array.prototype.forEach.call(ui.teamList.querySelectorAll("button.team-conv"),
			function (b) { b.setAttribute("aria-pressed", "false"); });
		return was;
	}

	function leaveMonitor() {
		var was = hideMonitor();
		if (current)
			select(current);
		var b = was && ui.teamList.querySelector('button[data-conv="' + was.conv + '"]');
		if (b)
			b.focus();
	}

	/* ---- wrap-up ------------------------------------------------------ */

	/* The server does not say whether the agent is in wrap-up after a close,
	 * so the button is offered for a while after each one. */
	/* "Wrap-up done" stays until the wrap-up the server set ends (the
	 * closed item's wrapup_until_ms), the agent ends it, or a new chat
	 * comes (the wrap-up is over then); kept across a reload. */
	/* Shows "Wrap-up done" until `until`; a wrap-up already running that ends
	 * later is kept (a second close, from a queue with a shorter one or none,
	 * does not end it on the server either). */
	function showWrapup(until) {
		if (wrapupTimer && wrapupUntil > until)
			return;
		clearTimeout(wrapupTimer);
		if (!(until > Date.now())) {
			hideWrapup();
			return;
		}
		wrapupUntil = until;
		ui.wrapup.hidden = false;
		ui.wrapup.disabled = false;
		wrapupTimer = setTimeout(hideWrapup, until - Date.now());
		try {
			sessionStorage.setItem(WRAPUP_KEY, String(until));
		} catch (e) {
			/* no storage: this page only */
		}
	}

	function hideWrapup() {
		clearTimeout(wrapupTimer);
		wrapupTimer = null;
		wrapupUntil = 0;
		try {
			sessionStorage.removeItem(WRAPUP_KEY);
		} catch (e) {
			/* no storage */
		}
		var hadFocus = document.activeElement === ui.wrapup;
		ui.wrapup.hidden = true;
		if (hadFocus)
			ui.presence.focus();
	}

	/* Text over the daemon's 4 KiB goes as several replies, cut between
	 * characters. */
	function reply(text) {
		var c = convs[current];
		if (!c || c.closed)
			return;
		omrText.parts(text).forEach(function (part) {
			var item = { type: "message", from: "agent", id: newId("a"), text: part,
				     name: "You", status: "pending", conversation_id: c.id };
			item.li = lineFor(item);
			c.items.push(item);
			ui.messages.appendChild(item.li);
			sendReply(c, item);
		});
		ui.messages.scrollTop = ui.messages.scrollHeight;
		saveConvs();
	}

	/* Sends (or sends again, with the same id: the server stores a reply
	 * once) one of this agent's replies; offline, it waits for the next
	 * login (resendReplies). */
	function sendReply(c, item) {
		pending[item.id] = { kind: "message", conv: c.id, li: item.li, item: item };
		if (!send({ type: "message", conversation_id: c.id, id: item.id, text: item.text })) {
			delete pending[item.id];
			item.li.title = "not connected: sent again when back online";
		}
	}

	function resendReplies() {
		order.forEach(function (cid) {
			var c = convs[cid];
			c.items.forEach(function (it) {
				/* (what was in flight went with the old connection) */
				if (it.from === "agent" && !it.seq && it.status === "pending" && !c.closed)
					sendReply(c, it);
			});
		});
	}

	/* ---- presence and login -------------------------------------------- */

	function saveCreds() {
		if (creds)
			sessionStorage.setItem(KEY, JSON.stringify({ agent: creds.agent, token: creds.token,
								    presence: want.presence,
								    reason: want.reason }));
	}

	/* Shows what the server says; reason is the break reason asked for. */
	function showPresence(p, reason) {
		presence = p === "available" || p === "break" ? p : "away";
		ui.presence.value = presence;
		ui.presence.className = "presence " + presence;
		ui.breakReason.hidden = presence !== "break";
		if (presence === "break") {
			/* a reason the server set (missed-offers, the site's): shown as it is */
			if (reason && !Array.prototype.some.call(ui.breakReason.options,
				function (o) { return o.value === reason; })) {
				var o = document.createElement("option");
				o.value = reason;
				o.textContent = PRESENCE_REASONS[reason] || reason;
				ui.breakReason.appendChild(o);
			}
			ui.breakReason.value = reason || "";
		}
	}

	var PRESENCE_REASONS = { "missed-offers": "Missed offers" };

	/* The server's presence changed, not at this desktop's request: by the
	 * router (a break after missed offers) or by the site (omnirouterctl
	 * agent state). A notice (no seq, nothing to ack); a login's welcome
	 * says the state to start from. */
	function onPresenceItem(item) {
		var p = item.presence, reason = item.reason || "";
		if (p === presence && (p !== "break" || reason === ui.breakReason.value))
			return;
		showPresence(p, reason);
		/* decided elsewhere: keep it across a reload rather than undo it */
		want = { presence: presence, reason: p === "break" ? reason : "" };
		saveCreds();
		if (reason === "missed-offers")
			notice("You are on break: offers in a row went unanswered. " +
			       "Choose Available when you are back.");
		else
			notice("Your status was set to " + (p === "offline" ? "offline" : p) +
			       " by the site" + (reason ? " (" + reason + ")" : "") + ".");
	}

	function setPresence(p, reason) {
		var id = newId("p");
		var frame = { type: "presence", presence: p, id: id };
		if (p === "break" && reason)
			frame.reason = reason;
		pending[id] = { kind: "presence", reason: reason };
		if (!send(frame)) {
			delete pending[id];
			showPresence(presence, "");
			setStatus("not connected");
		}
	}

	function choosePresence() {
		var p = ui.presence.value;
		var reason = p === "break" ? ui.breakReason.value : "";
		ui.breakReason.hidden = p !== "break";
		want = { presence: p, reason: reason };
		saveCreds();
		setPresence(p, reason);
	}

	function showLogin(error) {
		ui.desk.hidden = true;
		ui.login.hidden = false;
		ui.logout.hidden = true;
		ui.presenceBox.hidden = true;
		hideWrapup();
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

	ui.presence.addEventListener("change", choosePresence);
	/* the draft being typed, too, across a reload */
	window.addEventListener("pagehide", function () {
		if (creds)
			saveConvs();
	});
	ui.breakReason.addEventListener("change", choosePresence);

	ui.wrapup.addEventListener("click", function () {
		var id = newId("w");
		pending[id] = { kind: "wrapup" };
		if (send({ type: "wrapup_end", channel: "chat", id: id }))
			ui.wrapup.disabled = true;
		else
			delete pending[id];
	});

	ui.logout.addEventListener("click", function () {
		stopped = true;
		creds = null;
		hideMonitor();
		team = null;
		renderTeam();
		sessionStorage.removeItem(KEY);
		Object.keys(offers).forEach(function (id) { removeOffer(id); });
		sessionStorage.removeItem(CONVS_KEY);
		if (ws)
			ws.close(1000);
		showLogin("");
	});

	/* Close asks for the outcome first. */
	ui.closeBtn.addEventListener("click", function () {
		if (ui.closeForm.hidden)
			showCloseForm();
		else
			hideCloseForm(true);
	});

	ui.closeForm.addEventListener("submit", function (ev) {
		ev.preventDefault();
		closeConversation();
	});

	ui.closeCancel.addEventListener("click", function () { hideCloseForm(true); });

	ui.closeForm.addEventListener("keydown", function (ev) {
		if (ev.key === "Escape") {
			ev.preventDefault();
			hideCloseForm(true);
		} else if (ev.key === "Enter" && ev.target === ui.disposition) {
			ev.preventDefault(); /* a select does not submit its form by itself */
			ui.closeForm.requestSubmit();
		}
	});

	ui.transferBtn.addEventListener("click", openTransfer);
	ui.toQueue.addEventListener("change", updateTransferKind);
	ui.toAgent.addEventListener("change", updateTransferKind);
	ui.transferCancel.addEventListener("click", function () { ui.dialog.close(); });
	ui.transferForm.addEventListener("submit", function (ev) {
		ev.preventDefault();
		sendTransfer();
	});
	ui.dialog.addEventListener("close", function () {
		var sel = ui.list.querySelector("li.selected");
		if (!ui.transferBtn.hidden)
			ui.transferBtn.focus();
		else if (sel)
			sel.focus();
	});

	ui.teamRefresh.addEventListener("click", requestTeam);
	ui.monitorRefresh.addEventListener("click", function () { requestMonitor(false); });
	ui.monitorBack.addEventListener("click", leaveMonitor);
	/* Escape anywhere on the desk (the team list or the transcript) ends
	 * the reading. */
	ui.desk.addEventListener("keydown", function (ev) {
		if (ev.key === "Escape" && !ui.monitorView.hidden && !ev.defaultPrevented) {
			ev.preventDefault();
			leaveMonitor();
		}
	});

	ui.historyClose.addEventListener("click", function () {
		var was = shownEarlier;
		shownEarlier = null;
		ui.historyView.hidden = true;
		var b = was ? document.getElementById("earlier-" + was) : null;
		if (b) {
			b.setAttribute("aria-pressed", "false");
			b.focus();
		}
	});

	ui.text.addEventListener("input", function () {
		if (ui.text.value.trim())
			sendTyping();
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
		if (saved.presence === "available" || saved.presence === "break")
			want = { presence: saved.presence, reason: saved.reason || "" };
		else if (saved.available)
			want = { presence: "available", reason: "" };
		start(saved.agent, saved.token);
	} else {
		showLogin("");
	}
}());
