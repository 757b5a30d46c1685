/* fuzz-event: the client side: server messages and job records (what heidictl reads). */
#include <stddef.h>
#include <stdint.h>

#include "proto/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pack_doc doc;
	struct msg_event ev;
	struct proto_error err;

	pack_doc_init(&doc);
	if (msg_event_decode(&doc, data, size, &ev, &err) == 0) {
		struct job_info ji;
		const msgpack_object *rec = pack_map_get(ev.map, "record");
		const msgpack_object *recs = pack_map_get(ev.map, "records");

		if (rec != NULL && msg_job_info_decode(&doc, rec, &ji, &err) == 0)
			(void)job_info_exit_status(&ji);
		if (recs != NULL && recs->type == MSGPACK_OBJECT_ARRAY)
			for (uint32_t i = 0; i < recs->via.array.size; i++)
				if (msg_job_info_decode(&doc, &recs->via.array.ptr[i], &ji, &err) == 0)
					(void)job_info_exit_status(&ji);
	}
	pack_doc_deinit(&doc);
	return 0;
}
