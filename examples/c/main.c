/*
 * A C host of libprovision: what a desktop application does with the agent.
 *
 *   provision-example-c MODE STATE_DIR SERVER_URL CA_FILE
 *
 * MODE
 *   demo     accept consent (eu), record one error and one task, flush,
 *            print the installation id, the flush report and the status
 *   record   accept consent and record COUNT errors (COUNT from the
 *            PROVISION_EXAMPLE_COUNT variable, default 20) and one task,
 *            then flush in a loop until nothing waits (used by the
 *            crash test, which kills the process during a flush)
 *   deliver  record nothing; flush what waits and print the sent log
 *
 * Build: cc -Ilibprovision/include main.c -Lbuild -lprovision
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provision.h"

static int fail(const char *what, int status, char *err) {
	fprintf(stderr, "%s: %s (%d): %s\n", what, provision_status_name(status), status,
	        err ? err : "");
	provision_free(err);
	return 1;
}

/* Prints a JSON document the library handed out, and releases it. */
static void print_json(const char *label, char *json) {
	printf("%s=%s\n", label, json ? json : "null");
	fflush(stdout);
	provision_free(json);
}

/* upload settings as JSON; the paths here hold no quote or backslash. */
static char *upload_settings(const char *server, const char *ca) {
	size_t n = strlen(server) + strlen(ca) + 64;
	char *s = malloc(n);
	if (s) snprintf(s, n, "{\"server\":\"%s\",\"ca_file\":\"%s\",\"max_attempts\":2}", server, ca);
	return s;
}

/* Flushes until nothing waits; returns the status of the last flush. */
static int flush_all(provision_agent agent, const char *upload) {
	for (int round = 0; round < 50; round++) {
		char *report = NULL, *err = NULL, *status = NULL;
		printf("flush_start=%d\n", round);
		fflush(stdout);
		int rc = provision_flush(agent, upload, 60000, &report, &err);
		if (rc != PROVISION_OK) {
			provision_free(report);
			return fail("flush", rc, err);
		}
		print_json("flush", report);
		rc = provision_status(agent, &status, &err);
		if (rc != PROVISION_OK) return fail("status", rc, err);
		int empty = strstr(status, "\"events_waiting\":0,") != NULL &&
		            strstr(status, "\"batch_in_flight\":false") != NULL;
		provision_free(status);
		if (empty) return 0;
	}
	fprintf(stderr, "flush: events still waiting after 50 rounds\n");
	return 1;
}

int main(int argc, char **argv) {
	if (argc != 5) {
		fprintf(stderr, "usage: %s demo|record|deliver STATE_DIR SERVER_URL CA_FILE\n", argv[0]);
		return 2;
	}
	const char *mode = argv[1], *state = argv[2];
	if (provision_abi_version() != PROVISION_ABI_VERSION) {
		fprintf(stderr, "libprovision ABI %d, this program needs %d\n",
		        provision_abi_version(), PROVISION_ABI_VERSION);
		return 1;
	}
	char *version = provision_version();
	printf("version=%s\n", version);
	provision_free(version);

	char *err = NULL;
	provision_agent agent = 0;
	const char *config =
	    "{\"software\":{\"type\":\"vpn\",\"name\":\"Secure Connection\","
	    "\"version\":\"5.14.0.1234\",\"edition\":\"premium\",\"localization\":\"en-GB\"}}";
	int rc = provision_open(state, config, &agent, &err);
	if (rc != PROVISION_OK) return fail("open", rc, err);

	char *upload = upload_settings(argv[3], argv[4]);
	if (!upload) return 1;
	int code = 0;
	if (strcmp(mode, "demo") == 0 || strcmp(mode, "record") == 0) {
		char *consent = NULL;
		rc = provision_consent_accept(agent, "eu", &consent, &err);
		if (rc != PROVISION_OK) return fail("consent accept", rc, err);
		print_json("consent", consent);

		int count = 1;
		if (strcmp(mode, "record") == 0) {
			const char *c = getenv("PROVISION_EXAMPLE_COUNT");
			count = c ? atoi(c) : 20;
		}
		for (int i = 0; i < count; i++) {
			char errcode[32];
			snprintf(errcode, sizeof errcode, "E%d", 42 + i);
			rc = provision_record_error(agent, "connection_failed", errcode, "connect_button", &err);
			if (rc != PROVISION_OK) return fail("record error", rc, err);
		}
		rc = provision_record_task(agent, "upgrade", "success", NULL, NULL, 1234, "spring-2026", &err);
		if (rc != PROVISION_OK) return fail("record task", rc, err);

		if (strcmp(mode, "demo") == 0) {
			char *preview = NULL;
			rc = provision_dry_run(agent, NULL, &preview, &err);
			if (rc != PROVISION_OK) return fail("dry run", rc, err);
			print_json("dry_run", preview);
		}
	}
	code = flush_all(agent, upload);

	char *status = NULL, *sent = NULL;
	rc = provision_status(agent, &status, &err);
	if (rc != PROVISION_OK) return fail("status", rc, err);
	print_json("status", status);
	rc = provision_sent(agent, 0, &sent, &err);
	if (rc != PROVISION_OK) return fail("sent", rc, err);
	print_json("sent", sent);

	free(upload);
	rc = provision_close(agent, &err);
	if (rc != PROVISION_OK) return fail("close", rc, err);
	return code;
}
