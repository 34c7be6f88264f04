#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "ps_test_util.h"

int
pt_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
		                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int port = -1;
	if (fd < 0) {
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &alen) == 0) {
		port = ntohs(a.sin_port);
	}
	close(fd);
	return port;
}

static double
pt_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool
pt_port_open(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
		                 .sin_port = htons((uint16_t)port),
		                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	bool ok =
	        fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0) {
		close(fd);
	}
	return ok;
}

int
pt_redis_start(pt_redis *r, int port)
{
	if (r->dir[0] == '\0') {
		snprintf(r->dir, sizeof(r->dir), "/tmp/ps-test-XXXXXX");
		if (mkdtemp(r->dir) == NULL) {
			return -errno;
		}
	}
	r->port = port ? port : pt_free_port();
	char portbuf[16];
	snprintf(portbuf, sizeof(portbuf), "%d", r->port);
	pid_t pid = fork();
	if (pid < 0) {
		return -errno;
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR);
		dup2(nul, 0);
		dup2(nul, 1);
		dup2(nul, 2);
		if (r->extra[0] != NULL) {
			execlp("redis-server", "redis-server", "--port",
			       portbuf, "--bind", "127.0.0.1", "--save", "",
			       "--appendonly", "no", "--dir", r->dir,
			       r->extra[0], r->extra[1], r->extra[2],
			       (char *)NULL);
		}
		execlp("redis-server", "redis-server", "--port", portbuf,
		       "--bind", "127.0.0.1", "--save", "", "--appendonly",
		       "no", "--dir", r->dir, (char *)NULL);
		_exit(127);
	}
	r->pid = pid;
	double deadline = pt_now() + 10.0;
	while (pt_now() < deadline) {
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			r->pid = 0;
			return -ECHILD;
		}
		if (pt_port_open(r->port)) {
			return 0;
		}
		usleep(20000);
	}
	pt_redis_kill(r);
	return -ETIMEDOUT;
}

void
pt_redis_kill(pt_redis *r)
{
	if (r->pid > 0) {
		kill(r->pid, SIGKILL);
		waitpid(r->pid, NULL, 0);
		r->pid = 0;
	}
}

void
pt_redis_signal(pt_redis *r, int sig)
{
	if (r->pid > 0) {
		kill(r->pid, sig);
	}
}

void
pt_redis_cleanup(pt_redis *r)
{
	pt_redis_signal(r, SIGCONT);
	pt_redis_kill(r);
	if (r->dir[0] != '\0') {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir);
		if (system(cmd) != 0) {
			fprintf(stderr, "# could not remove %s\n", r->dir);
		}
		r->dir[0] = '\0';
	}
}

static void
pt_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	/* Only here so that EVRUN_ONCE returns regularly. */
}

bool
pt_run_until(struct ev_loop *loop, bool (*cond)(void *), void *arg,
             double timeout_s)
{
	ev_timer tick;
	ev_timer_init(&tick, pt_tick, 0.01, 0.01);
	ev_timer_start(loop, &tick);
	double deadline = pt_now() + timeout_s;
	bool ok = cond(arg);
	while (!ok && pt_now() < deadline) {
		ev_run(loop, EVRUN_ONCE);
		ok = cond(arg);
	}
	ev_timer_stop(loop, &tick);
	return ok;
}

static bool
pt_never(void *arg)
{
	return false;
}

void
pt_run_for(struct ev_loop *loop, double secs)
{
	pt_run_until(loop, pt_never, NULL, secs);
}

long
pt_numsub(int port, const char *topic)
{
	redisContext *c = redisConnect("127.0.0.1", port);
	long n = -1;
	if (c == NULL || c->err) {
		goto done;
	}
	redisReply *rep = redisCommand(c, "PUBSUB NUMSUB %s", topic);
	if (rep != NULL && rep->type == REDIS_REPLY_ARRAY &&
	    rep->elements == 2 &&
	    rep->element[1]->type == REDIS_REPLY_INTEGER) {
		n = (long)rep->element[1]->integer;
	}
	freeReplyObject(rep);
done:
	if (c != NULL) {
		redisFree(c);
	}
	return n;
}

long
pt_redis_count(int port, const char *command)
{
	redisContext *c = redisConnect("127.0.0.1", port);
	long n = -1;
	if (c == NULL || c->err) {
		goto done;
	}
	redisReply *rep = redisCommand(c, command);
	if (rep != NULL && rep->type == REDIS_REPLY_INTEGER) {
		n = (long)rep->integer;
	} else if (rep != NULL && rep->type == REDIS_REPLY_ARRAY) {
		n = (long)rep->elements;
	}
	freeReplyObject(rep);
done:
	if (c != NULL) {
		redisFree(c);
	}
	return n;
}

struct pt_numsub_arg {
	int port;
	const char *topic;
	long n;
};

static bool
pt_numsub_is(void *p)
{
	struct pt_numsub_arg *a = p;
	return pt_numsub(a->port, a->topic) == a->n;
}

bool
pt_wait_numsub(struct ev_loop *loop, int port, const char *topic, long n,
               double timeout_s)
{
	struct pt_numsub_arg a = { port, topic, n };
	return pt_run_until(loop, pt_numsub_is, &a, timeout_s);
}

long
pt_cli_publish(int port, const char *topic, const char *payload)
{
	int fds[2];
	char portbuf[16];
	snprintf(portbuf, sizeof(portbuf), "%d", port);
	if (pipe(fds) < 0) {
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execlp("redis-cli", "redis-cli", "-p", portbuf, "PUBLISH",
		       topic, payload, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	char out[64] = { 0 };
	size_t used = 0;
	ssize_t n;
	while (used < sizeof(out) - 1 &&
	       (n = read(fds[0], out + used, sizeof(out) - 1 - used)) > 0) {
		used += (size_t)n;
	}
	close(fds[0]);
	int status;
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		return -1;
	}
	char *end;
	long v = strtol(out, &end, 10);
	return end == out ? -1 : v;
}
