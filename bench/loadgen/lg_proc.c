/* Server statistics read from /proc (the server runs on this machine). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lg_loadgen.h"

static double
lg__cpu_one(pid_t pid)
{
	char path[64], buf[2048];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f) {
		return -1;
	}
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces: fields start after the last ')'.
	 */
	char *p = strrchr(buf, ')');
	if (!p) {
		return -1;
	}
	p++;
	unsigned long long utime = 0, stime = 0;
	/* After ')': state(3) ... utime is field 14, stime field 15. */
	for (int field = 3; field <= 15 && p; field++) {
		while (*p == ' ') {
			p++;
		}
		if (field == 14) {
			utime = strtoull(p, NULL, 10);
		} else if (field == 15) {
			stime = strtoull(p, NULL, 10);
		}
		p = strchr(p, ' ');
	}
	return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static long
lg__rss_one(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f) {
		return -1;
	}
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kb = strtol(line + 6, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb;
}

double
lg_proc_cpu_s(const lg_config *cfg)
{
	double sum = 0;
	for (int i = 0; i < cfg->nserver_pids; i++) {
		double v = lg__cpu_one(cfg->server_pids[i]);
		if (v < 0) {
			return -1;
		}
		sum += v;
	}
	return sum;
}

long
lg_proc_rss_kb(const lg_config *cfg)
{
	long sum = 0;
	for (int i = 0; i < cfg->nserver_pids; i++) {
		long v = lg__rss_one(cfg->server_pids[i]);
		if (v < 0) {
			return -1;
		}
		sum += v;
	}
	return sum;
}

/* Seconds the threads of pid spent runnable but waiting for a CPU
 * (schedstat run_delay): how much other processes held the server back. */
static double
lg__wait_one(pid_t pid)
{
	char path[96];
	double sum = 0;
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d) {
		return -1;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9') {
			continue;
		}
		char p2[160];
		unsigned long long run = 0, wait = 0;
		snprintf(p2, sizeof p2, "/proc/%d/task/%.20s/schedstat",
		         (int)pid, e->d_name);
		FILE *f = fopen(p2, "r");
		if (!f) {
			continue;
		}
		if (fscanf(f, "%llu %llu", &run, &wait) == 2) {
			sum += (double)wait / 1e9;
		}
		fclose(f);
	}
	closedir(d);
	return sum;
}

double
lg_proc_wait_s(const lg_config *cfg)
{
	double sum = 0;
	for (int i = 0; i < cfg->nserver_pids; i++) {
		double v = lg__wait_one(cfg->server_pids[i]);
		if (v < 0) {
			return -1;
		}
		sum += v;
	}
	return sum;
}
