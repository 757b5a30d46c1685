/*
 * fuzz-frame: the incremental frame reader, fed the input in pieces whose
 * sizes the input itself chooses; every complete frame is also decoded as
 * a client request (what heidid does with it).
 */
#include <stddef.h>
#include <stdint.h>

#include "proto/frame.h"
#include "proto/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct frame_reader r;
	size_t off = 0;
	uint8_t step;

	if (size < 1)
		return 0;
	step = data[0];
	data++;
	size--;
	frame_reader_init(&r, 1u << 16);
	while (off < size) {
		size_t n = (size_t)(step % 37) + 1;
		const uint8_t *p;
		size_t len;
		int rc;

		if (n > size - off)
			n = size - off;
		if (frame_reader_push(&r, data + off, n) < 0)
			break;
		off += n;
		step = (uint8_t)(step * 31 + 7);
		while ((rc = frame_reader_next(&r, &p, &len)) == 0) {
			struct pack_doc doc;
			struct msg_request req;
			struct proto_error err;

			pack_doc_init(&doc);
			msg_request_decode(&doc, p, len, &req, &err);
			pack_doc_deinit(&doc);
		}
		if (rc < 0)
			break;
	}
	frame_reader_push(&r, NULL, 0); /* EOF */
	{
		const uint8_t *p;
		size_t len;

		while (frame_reader_next(&r, &p, &len) == 0)
			;
	}
	frame_reader_deinit(&r);
	return 0;
}
