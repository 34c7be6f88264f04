/*
 * The bus worker's own translation unit, compiled into the fuzz targets so
 * that its static request decoding (bus__run_request, bus__handle_request,
 * bus__worker_message) is reached without a thread, a broker or a timer.
 * Nothing of bus_worker.c is changed or duplicated.
 */
#include "bus_worker.c"

#include "fuzz_worker_glue.h"

int
fz_worker_request(const bus_service *svc, const void *body, size_t len,
                  char **out)
{
	bus_worker_pool pool = { .nservices = 0 };
	bus__worker w = { .pool = &pool };
	int rc;

	*out = NULL;
	pthread_mutex_init(&w.lock, NULL);
	pthread_mutex_lock(&w.lock);
	rc = bus__run_request(&w, svc, body, len, out);
	pthread_mutex_unlock(&w.lock);
	pthread_mutex_destroy(&w.lock);
	return rc;
}

bool
fz_worker_message(void *sock, const bus_service *services, size_t n,
                  bus__msg *m)
{
	bus_worker_pool pool = { .services = services, .nservices = n };
	bus__worker w = { .pool = &pool, .sock = sock };
	bool keep;

	pthread_mutex_init(&w.lock, NULL);
	pthread_mutex_lock(&w.lock);
	keep = bus__worker_message(&w, m);
	pthread_mutex_unlock(&w.lock);
	pthread_mutex_destroy(&w.lock);
	return keep;
}
