/* Preloaded after libfikit.so into a program the tests cannot change (fikit-chain): at exit, write
 * the library's counters (fikit_get_stats) to the file named by FIKIT_STATS_DUMP, one line of
 * key=value. It is linked against libfikit.so so that the dynamic loader runs this destructor
 * before libfikit's own. */
#include <fikit/client.h>
#include <stdio.h>
#include <stdlib.h>

__attribute__((destructor)) static void dump_stats(void) {
  const char* path = getenv("FIKIT_STATS_DUMP");
  if (!path || !*path) return;
  struct fikit_client_stats s = {0};
  fikit_get_stats(&s);
  FILE* f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "stats_dump: failed to open %s: %m\n", path);
    return;
  }
  fprintf(f, "launches=%llu passed_through=%llu dropped=%llu lp_waits=%llu reconnects=%llu\n",
          (unsigned long long)s.launches, (unsigned long long)s.passed_through,
          (unsigned long long)s.dropped, (unsigned long long)s.lp_waits,
          (unsigned long long)s.reconnects);
  fclose(f);
}
