/*
 * The footprint of libprovision as a C host sees it.
 *
 *   provision-bench-host LIBRARY STATE_DIR N THREADS
 *
 * Prints, one "name value unit" per line:
 *  - VmRSS of the process before dlopen, after dlopen, after
 *    provision_open and after the timed calls;
 *  - ns per call of provision_abi_version (the bare C -> Go crossing),
 *    provision_status (a read that hands back JSON the host frees),
 *    provision_record_error one after another (each durable: one fsync),
 *    and provision_record_error from THREADS threads at once (the outbox
 *    commits concurrent records together).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "provision.h"

static long vmrss_kb(void) {
	FILE *f = fopen("/proc/self/status", "r");
	if (!f) return -1;
	char line[256];
	long kb = -1;
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kb = strtol(line + 6, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb;
}

static double now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static struct {
	int (*abi_version)(void);
	void (*free)(char *);
	int (*open)(const char *, const char *, provision_agent *, char **);
	int (*close)(provision_agent, char **);
	int (*accept)(provision_agent, const char *, char **, char **);
	int (*status)(provision_agent, char **, char **);
	int (*record_error)(provision_agent, const char *, const char *, const char *, char **);
} lib;

static void *must(void *handle, const char *name) {
	void *p = dlsym(handle, name);
	if (!p) {
		fprintf(stderr, "dlsym %s: %s\n", name, dlerror());
		exit(1);
	}
	return p;
}

static provision_agent agent;
static int per_thread;

static void *record_worker(void *arg) {
	char code[32];
	for (int i = 0; i < per_thread; i++) {
		snprintf(code, sizeof code, "T%ld-%d", (long)(intptr_t)arg, i % 4);
		if (lib.record_error(agent, "connection_failed", code, "connect_button", NULL) != PROVISION_OK) {
			fprintf(stderr, "record_error failed in a thread\n");
			exit(1);
		}
	}
	return NULL;
}

int main(int argc, char **argv) {
	if (argc != 5) {
		fprintf(stderr, "usage: %s LIBRARY STATE_DIR N THREADS\n", argv[0]);
		return 2;
	}
	int n = atoi(argv[3]), threads = atoi(argv[4]);
	if (n <= 0 || threads <= 0) return 2;

	printf("rss_before_dlopen %ld kB\n", vmrss_kb());
	void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 1;
	}
	printf("rss_after_dlopen %ld kB\n", vmrss_kb());
	lib.abi_version = (int (*)(void))must(h, "provision_abi_version");
	lib.free = (void (*)(char *))must(h, "provision_free");
	lib.open = (int (*)(const char *, const char *, provision_agent *, char **))must(h, "provision_open");
	lib.close = (int (*)(provision_agent, char **))must(h, "provision_close");
	lib.accept = (int (*)(provision_agent, const char *, char **, char **))must(h, "provision_consent_accept");
	lib.status = (int (*)(provision_agent, char **, char **))must(h, "provision_status");
	lib.record_error =
	    (int (*)(provision_agent, const char *, const char *, const char *, char **))must(h, "provision_record_error");

	char *err = NULL;
	if (lib.open(argv[2], NULL, &agent, &err) != PROVISION_OK || lib.accept(agent, "eu", NULL, &err) != PROVISION_OK) {
		fprintf(stderr, "open: %s\n", err ? err : "?");
		return 1;
	}
	printf("rss_after_open %ld kB\n", vmrss_kb());

	double t0 = now_ns();
	long sum = 0;
	for (int i = 0; i < n * 100; i++) sum += lib.abi_version();
	if (sum != (long)n * 100 * PROVISION_ABI_VERSION) return 1;
	printf("abi_version %.0f ns/call\n", (now_ns() - t0) / (n * 100));

	t0 = now_ns();
	for (int i = 0; i < n * 10; i++) {
		char *json = NULL;
		if (lib.status(agent, &json, NULL) != PROVISION_OK) return 1;
		lib.free(json);
	}
	printf("status %.0f ns/call\n", (now_ns() - t0) / (n * 10));

	t0 = now_ns();
	for (int i = 0; i < n; i++) {
		if (lib.record_error(agent, "connection_failed", "E42", "connect_button", NULL) != PROVISION_OK) return 1;
	}
	printf("record_error_sequential %.0f ns/call\n", (now_ns() - t0) / n);

	per_thread = n;
	pthread_t *ids = calloc((size_t)threads, sizeof *ids);
	t0 = now_ns();
	for (int i = 0; i < threads; i++) pthread_create(&ids[i], NULL, record_worker, (void *)(intptr_t)i);
	for (int i = 0; i < threads; i++) pthread_join(ids[i], NULL);
	printf("record_error_%d_threads %.0f ns/call\n", threads, (now_ns() - t0) / ((double)n * threads));
	free(ids);

	printf("rss_after_calls %ld kB\n", vmrss_kb());
	if (lib.close(agent, &err) != PROVISION_OK) {
		fprintf(stderr, "close: %s\n", err);
		return 1;
	}
	return 0;
}
