/*
 * store.c: see store.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fd.h"
#include "common/paths.h"
#include "heidid/store.h"
#include "proto/frame.h"

static char jobs_dir[4096];

int
store_init(const char *state_dir)
{
	snprintf(jobs_dir, sizeof(jobs_dir), "%s/jobs", state_dir);
	return paths_mkdir_p(jobs_dir, 0700);
}

void
store_job_dir(uint64_t id, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%llu", jobs_dir, (unsigned long long)id);
}

int
store_write_record(const struct job_info *ji)
{
	char dir[4200], tmp[4300], path[4300];
	struct pack_buf b;
	int fd, r = 0;

	store_job_dir(ji->id, dir, sizeof(dir));
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(tmp, sizeof(tmp), "%s/record.tmp", dir);
	snprintf(path, sizeof(path), "%s/record", dir);
	pack_buf_init(&b);
	msg_pack_job_info(&b.pk, ji);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		r = -errno;
	else {
		r = fd_write_all(fd, b.sbuf.data, b.sbuf.size);
		close(fd);
		if (r == 0 && rename(tmp, path) < 0)
			r = -errno;
		if (r < 0)
			unlink(tmp);
	}
	pack_buf_deinit(&b);
	return r;
}

void
store_remove(uint64_t id)
{
	char dir[4200];
	DIR *d;
	struct dirent *de;
	int dfd;

	store_job_dir(id, dir, sizeof(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return;
	d = fdopendir(dfd);
	if (d == NULL) {
		close(dfd);
		return;
	}
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			unlinkat(dfd, de->d_name, 0);
	closedir(d);
	rmdir(dir);
}

static int
load_one(const char *name, store_load_fn fn, void *data)
{
	char path[4400];
	struct pack_doc doc;
	struct proto_error err;
	struct job_info ji;
	struct stat st;
	char *buf;
	int fd, r = -EBADMSG;

	snprintf(path, sizeof(path), "%s/%s/record", jobs_dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size > FRAME_MAX) {
		close(fd);
		return -EBADMSG;
	}
	buf = malloc((size_t)st.st_size);
	if (buf != NULL && read(fd, buf, (size_t)st.st_size) == st.st_size) {
		pack_doc_init(&doc);
		if (pack_doc_parse(&doc, buf, (size_t)st.st_size, &err) == 0 &&
		    msg_job_info_decode(&doc, doc.root, &ji, &err) == 0) {
			fn(&ji, (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000, data);
			r = 0;
		}
		pack_doc_deinit(&doc);
	}
	free(buf);
	close(fd);
	return r;
}

int
store_load(store_load_fn fn, void *data)
{
	DIR *d = opendir(jobs_dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		char *end;

		strtoull(de->d_name, &end, 10);
		if (de->d_name[0] < '1' || de->d_name[0] > '9' || *end != '\0')
			continue;
		if (load_one(de->d_name, fn, data) == 0)
			n++;
	}
	closedir(d);
	return n;
}
