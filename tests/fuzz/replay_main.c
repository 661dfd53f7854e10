/* replay_main.c - runs LLVMFuzzerTestOneInput over files, for builds without
 * libFuzzer: each argument is a corpus directory (every regular file in it)
 * or a single file. Exits non-zero when an argument cannot be read; a finding
 * aborts inside the target, which fails the test. Single-threaded. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long len;

	if (!f) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
		goto fail;
	/* +1: malloc(0) may return NULL, and the target must see a real pointer. */
	if (!(buf = malloc((size_t)len + 1)))
		goto fail;
	if (len && fread(buf, 1, (size_t)len, f) != (size_t)len)
		goto fail;
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)len);
	free(buf);
	return 0;
fail:
	fprintf(stderr, "replay: %s: cannot read\n", path);
	free(buf);
	fclose(f);
	return -1;
}

static int run_dir(const char *dir, unsigned *count)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int rc = 0;

	if (!d) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d))) {
		char path[4096];
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
			return closedir(d), -1;
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (run_file(path) != 0)
			rc = -1;
		else
			(*count)++;
	}
	closedir(d);
	return rc;
}

int main(int argc, char **argv)
{
	unsigned count = 0;
	int rc = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;

		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
			rc |= run_dir(argv[i], &count);
		else if (run_file(argv[i]) == 0)
			count++;
		else
			rc = -1;
	}
	/* An empty run means a wrong path, not a pass. */
	printf("replay: %u inputs, %s\n", count, rc || !count ? "errors" : "ok");
	return rc || !count ? 1 : 0;
}
