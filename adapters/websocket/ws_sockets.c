/* ws_sockets.c - accepted sockets per address (ws_sockets.h). */
#include "websocket/ws_sockets.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "omnirouter/log.h"
#include "websocket/ws_conn.h" /* ws_ip_key */

#define WS_FD_RESERVE 64 /* descriptors kept for Redis, the bus, files */

int ws_sockets_init(ws_sockets_t *s, uint64_t seed)
{
	*s = (ws_sockets_t){.seed = seed, .max = SIZE_MAX};
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY &&
	    nofile.rlim_cur > 2 * WS_FD_RESERVE)
		s->max = (size_t)nofile.rlim_cur - WS_FD_RESERVE;
	s->by_wsi = omr_u64map_new();
	s->per_ip = omr_u64map_new();
	if (!s->by_wsi || !s->per_ip) {
		ws_sockets_free(s);
		return -ENOMEM;
	}
	return 0;
}

void ws_sockets_free(ws_sockets_t *s)
{
	omr_u64map_destroy(&s->by_wsi);
	omr_u64map_destroy(&s->per_ip);
}

/* The address as ws_conn's ip ("127.0.0.1"; an IPv4-mapped IPv6 address as
 * IPv4), then its key (never 0: a map key). */
static uint64_t addr_key(const ws_sockets_t *s, const struct sockaddr *sa, char *ip, size_t iplen)
{
	const void *a = NULL;
	int af = sa->sa_family;
	if (af == AF_INET) {
		a = &((const struct sockaddr_in *)sa)->sin_addr;
	} else if (af == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		a = a6;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			a = &a6->s6_addr[12];
			af = AF_INET;
		}
	}
	if (!a || !inet_ntop(af, a, ip, (socklen_t)iplen))
		snprintf(ip, iplen, "unknown");
	return ws_ip_key(ip, s->seed) | 1;
}

static size_t count_of(const ws_sockets_t *s, uint64_t k)
{
	return (size_t)(uintptr_t)omr_u64map_get(s->per_ip, k);
}

int ws_sockets_filter(ws_sockets_t *s, const struct lws_filter_network_conn_args *f, size_t per_ip,
                      uint64_t now_ms)
{
	char ip[64];
	uint64_t k = addr_key(s, (const struct sockaddr *)&f->cli_addr, ip, sizeof(ip));
	if (count_of(s, k) < per_ip && s->total < s->max)
		return 0;
	s->refused++;
	if (now_ms - s->logged_ms >= 1000) {
		omr_warn("ws",
		         "closed sockets over an address's share refused=%llu last_ip=%s "
		         "per_ip_max=%zu open=%zu",
		         (unsigned long long)s->refused, ip, per_ip, s->total);
		s->refused = 0;
		s->logged_ms = now_ms;
	}
	return 1;
}

void ws_sockets_accepted(ws_sockets_t *s, struct lws *wsi, size_t per_ip)
{
	char ip[64];
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getpeername(lws_get_socket_fd(wsi), (struct sockaddr *)&ss, &len) != 0)
		return; /* not a network socket */
	uint64_t k = addr_key(s, (const struct sockaddr *)&ss, ip, sizeof(ip));
	size_t n = count_of(s, k);
	if (n >= per_ip || s->total >= s->max) {
		lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_KEEPALIVE_IDLE, LWS_TO_KILL_ASYNC);
		return;
	}
	if (omr_u64map_put(s->per_ip, k, (void *)(uintptr_t)(n + 1))) {
		omr_warn("ws", "socket table: out of memory"); /* admitted, uncounted */
		return;
	}
	if (omr_u64map_put(s->by_wsi, (uint64_t)(uintptr_t)wsi, (void *)(uintptr_t)k)) {
		omr_warn("ws", "socket table: out of memory");
		if (n == 0)
			omr_u64map_del(s->per_ip, k);
		else
			omr_u64map_put(s->per_ip, k, (void *)(uintptr_t)n);
		return;
	}
	s->total++;
}

void ws_sockets_close(ws_sockets_t *s, const struct lws *wsi)
{
	uint64_t k = (uint64_t)(uintptr_t)omr_u64map_del(s->by_wsi, (uint64_t)(uintptr_t)wsi);
	if (!k)
		return;
	size_t n = count_of(s, k);
	if (n <= 1)
		omr_u64map_del(s->per_ip, k);
	else
		omr_u64map_put(s->per_ip, k, (void *)(uintptr_t)(n - 1));
	s->total--;
}
