/* widget.js - puts the customer chat on any web page with one line:
 *
 *   <script src="https://CHAT-HOST/widget.js" data-language="es"
 *           data-topic="billing" async></script>
 *
 * It adds a floating "Chat with us" button; the button opens a small window
 * (an iframe of chat.html from the same host as this script) and closes it
 * again. Options, all optional, as data- attributes of the script tag:
 *   data-language     BCP-47 tag preselected in the chat (es, es-MX, ...)
 *   data-topic        topic preselected (billing, technical, sales, ...)
 *   data-customer-id  the site's own id of a logged-in customer
 *                     (1-128 of A-Z a-z 0-9 . _ : @ -), so the agent sees
 *                     their earlier conversations; without it the chat keeps
 *                     a random id in its own localStorage
 *   data-customer-signature  the site's signature of that id (64 lowercase hex
 *                     digits; docs/PROTOCOL.md, "Identity verification"),
 *                     computed on the site's server: required when the chat
 *                     daemon verifies identities (chat.identity_secret)
 *   data-name         the customer's name, prefilled
 *   data-tenant       the tenant, for sites that serve several
 *   data-label        the button's text (default "Chat with us")
 *   data-color        the button's colour (default #2f5bd3)
 * They reach chat.html as query parameters. No cookies; the page embedding
 * this script needs nothing else (with a Content-Security-Policy it must allow
 * this host in script-src and frame-src). Styles are set from script, so the
 * host page's CSS cannot break the widget, and vice versa. */
(function () {
	"use strict";

	var me = document.currentScript;
	if (!me || window.omrChatWidget)
		return;
	var OPEN_KEY = "omr.widget.open";
	var data = me.dataset;
	var base = new URL(".", me.src);
	var params = new URLSearchParams();
	params.set("embed", "1");
	[["language", "language"], ["topic", "topic"], ["customerId", "customer_id"],
	 ["customerSignature", "customer_signature"], ["name", "name"],
	 ["tenant", "tenant"]].forEach(function (p) {
		var v = (data[p[0]] || "").trim();
		if (v)
			params.set(p[1], v);
	});
	var src = new URL("chat.html", base).href + "?" + params.toString();
	var label = data.label || "Chat with us";
	var color = /^#[0-9A-Fa-f]{3,8}$/.test(data.color || "") ? data.color : "#2f5bd3";

	function css(el, styles) {
		Object.keys(styles).forEach(function (k) { el.style[k] = styles[k]; });
	}

	var button = document.createElement("button");
	button.type = "button";
	button.id = "omr-chat-button";
	button.textContent = label;
	button.setAttribute("aria-expanded", "false");
	button.setAttribute("aria-controls", "omr-chat-frame");
	css(button, {
		position: "fixed", right: "20px", bottom: "20px", zIndex: "2147483000",
		padding: "12px 20px", border: "0", borderRadius: "24px", background: color,
		color: "#fff", font: "600 15px/1.2 system-ui, sans-serif", cursor: "pointer",
		boxShadow: "0 4px 14px rgba(0, 0, 0, .25)"
	});

	var frame = document.createElement("iframe");
	frame.id = "omr-chat-frame";
	frame.title = label;
	frame.hidden = true;
	css(frame, {
		position: "fixed", right: "20px", bottom: "80px", zIndex: "2147483000",
		width: "min(380px, calc(100vw - 40px))", height: "min(600px, calc(100vh - 100px))",
		border: "0", borderRadius: "12px", background: "#fff",
		boxShadow: "0 8px 28px rgba(0, 0, 0, .3)"
	});

	function remember(open) {
		try {
			if (open)
				sessionStorage.setItem(OPEN_KEY, "1");
			else
				sessionStorage.removeItem(OPEN_KEY);
		} catch (e) {
			/* no storage: the window just starts closed after a reload */
		}
	}

	function setOpen(open, focus) {
		if (open && !frame.src)
			frame.src = src; /* loaded on first use */
		frame.hidden = !open;
		frame.style.display = open ? "block" : "none";
		button.setAttribute("aria-expanded", open ? "true" : "false");
		button.textContent = open ? "Close chat" : label;
		remember(open);
		if (open && focus)
			frame.focus();
	}

	button.addEventListener("click", function () { setOpen(frame.hidden, true); });

	function mount() {
		document.body.appendChild(frame);
		document.body.appendChild(button);
		frame.style.display = "none";
		var wasOpen = false;
		try {
			wasOpen = sessionStorage.getItem(OPEN_KEY) === "1";
		} catch (e) {
			wasOpen = false;
		}
		/* a conversation in progress comes back after a reload */
		if (wasOpen)
			setOpen(true, false);
	}

	window.omrChatWidget = {
		open: function () { setOpen(true, true); },
		close: function () { setOpen(false, false); }
	};
	if (document.body)
		mount();
	else
		document.addEventListener("DOMContentLoaded", mount);
}());
