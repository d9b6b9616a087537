// A small persistent thread pool for the kernels (no OpenMP: nothing to link, no second
// OpenMP runtime next to PyTorch's, and full control of how idle workers wait).
//
// run(nt, fn, ctx) calls fn(ctx, worker) on the caller (worker 0) and on nt - 1 pool threads
// and returns when all are done.  Work is handed out by the caller's function itself (atomic
// chunk counters, one run of chunks per worker that the others take from once they are out of
// their own), so a worker that wakes late simply takes fewer chunks.  Idle workers
// spin for as long as the recent gaps between jobs say the next job will take to come (up to
// 300 us: back-to-back optimizer steps reuse them without a futex wake-up; in a training loop,
// where the next job is a forward pass away, almost not at all, so they do not hold a core
// the caller's BLAS threads need), then sleep on a condition variable.  Concurrent callers (the GIL
// is released) do not share the pool: a second caller runs serially.  After fork() the child starts
// a fresh pool.
#pragma once

#include <string>

namespace fastopt {
namespace threads {

using TaskFn = void (*)(void* ctx, int worker);

// CPUs available to this process: its affinity mask (sched_getaffinity), or its cgroup's CPU
// quota when that is lower (cgroup v2 cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us, at
// its cgroup and every parent; rounded up).
int default_threads();
// The quota part: the lowest CPU limit of the cgroups named in `proc_cgroup` (the text of
// /proc/self/cgroup) under the cgroup mount `root`; 0 when none is set.  For tests.
int cgroup_cpu_limit(const std::string& proc_cgroup, const std::string& root);
int cpus();               // default_threads(), read once (again in a forked child)
int get_threads();        // current setting (FASTOPT_NUM_THREADS or default)
void set_threads(int n);  // n >= 1
// Runs fn on min(nt, get_threads()) threads; returns the number used.
int run(int nt, TaskFn fn, void* ctx);
// Jobs handed to the pool threads so far (runs on one thread are not counted): for tests.
unsigned long long pool_jobs();
// One round of a short busy wait for another thread of a job: the CPU's pause instruction
// for the first few thousand rounds, then a yield (that thread may have been preempted).
void relax(int& spins);

}  // namespace threads
}  // namespace fastopt
