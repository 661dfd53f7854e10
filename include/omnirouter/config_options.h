/* config_options.h - every configuration option, declared once.
 *
 * OMR_OPT(type, field, "yaml.path", default, min, max, reloadable, "help")
 *   type: INT (int64_t, default/min/max are numbers), BOOL (default 0/1),
 *         STR (char *, default a string literal; min/max bound its length
 *         in bytes), LEVEL (log level name).
 * The YAML file is a mapping of sections to mappings of options:
 *   redis:
 *     host: 127.0.0.1
 * config/omnirouter.yaml documents every option; tests load it. */
OMR_OPT(LEVEL, log_level, "log.level", "info", 0, 0, true,
        "minimum level logged: debug, info, warn, error")

OMR_OPT(STR, instance_name, "daemon.instance_name", "", 0, 64, false,
        "name of this instance in logs and Redis; empty = hostname-pid")

OMR_OPT(STR, redis_host, "redis.host", "127.0.0.1", 1, 255, false, "Redis host name or address")
OMR_OPT(INT, redis_port, "redis.port", 6379, 1, 65535, false, "Redis TCP port")
OMR_OPT(STR, redis_username, "redis.username", "", 0, 255, false,
        "Redis ACL user for AUTH; empty = the default user")
OMR_OPT(STR, redis_password, "redis.password", "", 0, 255, false, "AUTH password; empty = none")
OMR_OPT(INT, redis_db, "redis.db", 0, 0, 15, false, "Redis database number")
OMR_OPT(INT, redis_ping_interval_ms, "redis.ping_interval_ms", 1000, 100, 60000, true,
        "how often the watchdog PINGs Redis")
OMR_OPT(INT, redis_ping_timeout_ms, "redis.ping_timeout_ms", 3000, 100, 60000, true,
        "a PING unanswered this long means Redis is dead: reconnect")
OMR_OPT(INT, redis_reconnect_min_ms, "redis.reconnect_min_ms", 100, 10, 60000, true,
        "first reconnect delay; doubles up to reconnect_max_ms")
OMR_OPT(INT, redis_reconnect_max_ms, "redis.reconnect_max_ms", 5000, 10, 600000, true,
        "longest reconnect delay")

OMR_OPT(STR, bus_endpoint, "bus.endpoint", "inproc://omnirouter-bus", 1, 255, false,
        "ZeroMQ endpoint the router binds and adapters connect to")
OMR_OPT(INT, bus_max_frame_bytes, "bus.max_frame_bytes", 65536, 8192, 16777216, false,
        "largest envelope accepted on the bus (also ZMQ_MAXMSGSIZE)")
OMR_OPT(INT, bus_ack_timeout_ms, "bus.ack_timeout_ms", 2000, 50, 60000, true,
        "an adapter resends a request not acknowledged within this time")
OMR_OPT(INT, bus_max_attempts, "bus.max_attempts", 5, 1, 100, true,
        "sends of one request before the adapter gives up and reports an error")
OMR_OPT(INT, bus_max_pending, "bus.max_pending", 10000, 1, 1000000, false,
        "requests an adapter may have in flight; past that it stops reading from clients")

OMR_OPT(STR, ws_listen, "websocket.listen", "127.0.0.1", 1, 255, false,
        "address the websocket/HTTP server listens on")
OMR_OPT(INT, ws_port, "websocket.port", 8080, 1, 65535, false,
        "websocket/HTTP port (customer chat page, agent desktop, /healthz)")
OMR_OPT(STR, ws_static_dir, "websocket.static_dir", "web", 1, 4095, false,
        "directory of the customer and agent pages; relative to the working directory")
OMR_OPT(INT, ws_max_frame_bytes, "websocket.max_frame_bytes", 16384, 512, 1048576, true,
        "largest websocket message accepted from a client")
OMR_OPT(INT, ws_max_connections, "websocket.max_connections", 20000, 1, 1000000, false,
        "total websocket connections; more get an error frame and a close")
OMR_OPT(INT, ws_max_connections_per_ip, "websocket.max_connections_per_ip", 1000, 1, 1000000, true,
        "websocket connections from one IP address")
OMR_OPT(INT, ws_max_messages_per_second, "websocket.max_messages_per_second", 20, 1, 100000, true,
        "messages one connection may send per second (burst = 2x); more = flood: error and close")
OMR_OPT(INT, ws_auth_timeout_ms, "websocket.auth_timeout_ms", 10000, 100, 600000, true,
        "a connection that has not said hello/login within this time is closed")
OMR_OPT(INT, ws_ping_interval_s, "websocket.ping_interval_s", 30, 0, 3600, false,
        "websocket PING interval; 0 = off")
OMR_OPT(STR, ws_tls_cert, "websocket.tls_cert", "", 0, 4095, false,
        "PEM certificate (chain) file; with tls_key, the port serves https and wss only")
OMR_OPT(STR, ws_tls_key, "websocket.tls_key", "", 0, 4095, false,
        "PEM private key file of tls_cert")

OMR_OPT(STR, routing_tenant, "routing.default_tenant", "default", 1, 64, false,
        "tenant used when a customer page does not name one")
OMR_OPT(STR, routing_default_language, "routing.default_language", "en", 2, 35, true,
        "language assumed when a customer page does not declare one")
OMR_OPT(STR, routing_group, "routing.group", "default", 1, 64, false,
        "routing group: the Redis hash tag of every routing key (an id)")
OMR_OPT(INT, routing_tick_ms, "routing.tick_ms", 200, 20, 10000, true,
        "how often each instance fires due routing timers")
OMR_OPT(STR, routing_blocking_channels, "routing.blocking_channels", "voice:chat,email", 0, 255,
        true, "\"A:B,C;D:E\": an agent holding a conversation on A gets no new B or C")
OMR_OPT(INT, routing_heartbeat_timeout_s, "routing.heartbeat_timeout_s", 30, 3, 3600, true,
        "an agent whose desktop's instance has not vouched for it this long is offline (lost)")
OMR_OPT(INT, routing_agent_grace_s, "routing.agent_grace_s", 60, 0, 86400, true,
        "a lost or disconnected agent keeps its conversations this long, then they are re-queued")
OMR_OPT(INT, routing_max_missed_offers, "routing.max_missed_offers", 3, 1, 100, true,
        "offers an agent may let time out in a row before it is put on break (missed-offers)")
OMR_OPT(INT, routing_decline_hold_s, "routing.decline_hold_s", 300, 10, 86400, true,
        "an agent who rejected, missed or transferred a conversation is not offered it again "
        "for this long")
OMR_OPT(INT, chat_max_text_bytes, "chat.max_text_bytes", 4096, 1, 65536, true,
        "longest chat message text")
OMR_OPT(INT, chat_max_messages, "chat.max_messages", 1000, 10, 100000, true,
        "messages one conversation may hold; more are refused")
OMR_OPT(INT, chat_position_interval_s, "chat.position_interval_s", 5, 0, 600, true,
        "how often a waiting customer is told its queue position and estimated wait; 0 = never")
OMR_OPT(INT, chat_abandon_after_s, "chat.abandon_after_s", 60, 0, 86400, true,
        "a waiting conversation whose customer left this long ago is closed (abandoned); 0 = never")
OMR_OPT(INT, chat_retention_days, "chat.retention_days", 30, 0, 3650, true,
        "days a closed conversation (transcript, survey, explanation) is kept; 0 = forever")
OMR_OPT(STR, chat_identity_secret, "chat.identity_secret", "", 0, 256, true,
        "HMAC-SHA256 key of customer_signature (empty, or 16..256 bytes); empty = customer_id "
        "is not verified")
