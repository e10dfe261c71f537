#include "examples/server_main.h"

#include <stdio.h>
#include <sys/resource.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "examples/listen_flags.h"
#include "examples/usage.h"
#include "framework/endpoints.h"
#include "framework/per_reactor_factory.h"
#include "framework/poller.h"
#include "framework/reactor.h"
#include "framework/reactor_pool.h"
#include "framework/tcp_port.h"
#include "framework/process_supervisor.h"
#include "gflags/gflags.h"
#include "protocols/policies.h"

DEFINE_string(reactor, "epoll",
              "How to wait for sockets: epoll, poll or select.");
DEFINE_int32(backlog, 511,
             "listen(2) backlog: connections the kernel queues; for every stream "
             "endpoint that gives no backlog= of its own.");
DEFINE_int32(max_connections, 0,
             "Most connections served at once; one over it is closed at "
             "once. 0: as many as the open-file limit allows.");
DEFINE_double(idle_timeout, 0,
              "Seconds a connection may send nothing before it is closed; "
              "0 disables.");
DEFINE_double(accept_rate, 0,
              "Most new connections accepted per second (the rest wait in "
              "the backlog); 0 disables.");

DEFINE_int32(threads, 1,
             "Reactors, each on a thread of its own (a ReactorPool), that share "
             "the connections; 1: one reactor on the main thread.");
DEFINE_string(spread, "round_robin",
              "With --threads > 1, how connections are spread over the reactors: "
              "round_robin (one listener hands each to the next reactor) or "
              "reuseport (a listener per reactor on the same port, SO_REUSEPORT; "
              "tcp only).");
DEFINE_int32(workers, 0,
             "Worker processes serving the same port(s), forked and supervised "
             "by this one (restarted if they die); 0 or 1: serve in this "
             "process. --max_connections, --accept_rate and --idle_timeout "
             "apply to each worker.");

namespace twist {
namespace {

// The policies around a factory: a program's `wrap` innermost, then
// --idle_timeout (both timed on one reactor, so made for each reactor of a
// pool), then --max_connections outermost (counted across every reactor).
// Owns the wrappers, which must outlive the reactors: their destructors
// still call into the connections' protocols.
class Policies {
 public:
  // One reactor's connections: a single process, or a worker.
  Factory* Wrap(Reactor* reactor, Factory* factory, WrapFactory& wrap) {
    return Limit(WrapForReactor(reactor, factory, wrap));
  }
  // A pool's: each reactor serves through its own timed layers.
  Factory* Wrap(ReactorPool* pool, Factory* factory, WrapFactory& wrap) {
    if (wrap != nullptr || FLAGS_idle_timeout > 0) {
      std::vector<Factory*> each;
      for (int i = 0; i < pool->size(); ++i) {
        each.push_back(WrapForReactor(&pool->reactor(i), factory, wrap));
      }
      factory = Own(std::make_unique<PerReactorFactory>(pool, std::move(each)));
    }
    return Limit(factory);
  }

  // The factory for one endpoint's connections on `reactor`: TLS around
  // `factory` for ssl: (serverFactoryForSpec), else `factory`.
  absl::StatusOr<Factory*> ForEndpoint(Reactor* reactor, const ServerEndpointSpec& spec,
                                       Factory* factory) {
    absl::StatusOr<std::unique_ptr<Factory>> own = serverFactoryForSpec(reactor, spec, factory);
    if (!own.ok()) return own.status();
    return *own == nullptr ? factory : Own(*std::move(own));
  }
  // The same for a pool: a TLS factory per reactor, each on its own clock.
  absl::StatusOr<Factory*> ForEndpoint(ReactorPool* pool, const ServerEndpointSpec& spec,
                                       Factory* factory) {
    if (spec.type != ServerEndpointSpec::Type::kSsl) return factory;
    std::vector<Factory*> each;
    for (int i = 0; i < pool->size(); ++i) {
      absl::StatusOr<Factory*> f = ForEndpoint(&pool->reactor(i), spec, factory);
      if (!f.ok()) return f.status();
      each.push_back(*f);
    }
    return Own(std::make_unique<PerReactorFactory>(pool, std::move(each)));
  }

 private:
  Factory* WrapForReactor(Reactor* reactor, Factory* factory, WrapFactory& wrap) {
    if (wrap != nullptr) {
      if (std::unique_ptr<Factory> wrapped = wrap(reactor, factory)) factory = Own(std::move(wrapped));
    }
    if (FLAGS_idle_timeout > 0) {
      factory = Own(std::make_unique<TimeoutFactory>(reactor, factory,
                                                     absl::Seconds(FLAGS_idle_timeout)));
    }
    return factory;
  }
  Factory* Limit(Factory* factory) {
    if (FLAGS_max_connections <= 0) return factory;
    return Own(std::make_unique<LimitTotalConnectionsFactory>(factory, FLAGS_max_connections));
  }
  Factory* Own(std::unique_ptr<Factory> f) {
    owned_.push_back(std::move(f));
    return owned_.back().get();
  }

  std::vector<std::unique_ptr<Factory>> owned_;
};

// At most `rate` accepts per second on `port`, in bursts of a tenth of a
// second's worth, so that a rate of 1000/s is not held to one accept per
// millisecond.
void LimitAcceptRate(Port* port, double rate) {
  port->setAcceptRateLimit(rate, std::max(1, static_cast<int>(rate / 10)));
}

// --workers=N: the parent binds every endpoint, then forks N workers that
// each adopt the listening sockets into a reactor of their own and serve
// them with the same policies as a single process; the parent only
// supervises (framework/process_supervisor.h). Parent and workers share
// one accept queue per endpoint, so a worker that dies loses no listener
// and no queued connection (docs/design.md, "Worker processes").
int ServeWithWorkers(absl::string_view program, std::vector<ServerEndpointSpec> specs,
                     Factory* factory, WrapFactory wrap) {
  // Never asked to build anything: the parent accepts nothing. Declared
  // before the reactor that holds ports on it.
  Factory unused([] { return std::unique_ptr<Protocol>(); });
  ReactorOptions options;
  options.poller = FLAGS_reactor;
  // The parent's reactor only binds (it is never run): its ports own the
  // sockets and, for Unix paths, the files, removed when it is destroyed.
  absl::StatusOr<std::unique_ptr<Reactor>> binder = Reactor::Create(options);
  if (!binder.ok()) {
    return BadUsage(program, absl::StrCat("--reactor: ", binder.status().message()));
  }
  std::vector<ListeningPort> ports;
  for (const ServerEndpointSpec& spec : specs) {
    // The parent's listen also checks an ssl: key and certificate, before
    // any worker starts; the workers serve TLS themselves (ForEndpoint).
    std::unique_ptr<ServerEndpoint> endpoint = serverFromSpec(binder->get(), spec, FLAGS_backlog);
    absl::StatusOr<ListeningPort> port = endpoint->listen(&unused);
    if (!port.ok()) return Fail(program, port.status().message());
    ports.push_back(*port);
  }
  PrintListening(ports);
  auto serve = [&](int) -> int {
    // A worker: what ServeForever does in one process, on adopted sockets.
    Policies policies;  // outlives the reactor
    absl::StatusOr<std::unique_ptr<Reactor>> reactor = Reactor::Create(options);
    if (!reactor.ok()) return Fail(program, reactor.status().message());
    if (absl::Status s = (*reactor)->installSignalHandlers(); !s.ok()) {
      return Fail(program, s.message());
    }
    Factory* served = policies.Wrap(reactor->get(), factory, wrap);
    for (size_t i = 0; i < ports.size(); ++i) {
      absl::StatusOr<Factory*> endpoint_factory =
          policies.ForEndpoint(reactor->get(), specs[i], served);
      if (!endpoint_factory.ok()) return Fail(program, endpoint_factory.status().message());
      absl::StatusOr<Port*> port =
          (*reactor)->adoptStreamPort(ports[i].stream()->fileno(), *endpoint_factory);
      if (!port.ok()) return Fail(program, port.status().message());
      if (FLAGS_accept_rate > 0) LimitAcceptRate(*port, FLAGS_accept_rate);
    }
    (*reactor)->run();
    // The reactor goes before the policies that wrap the factory.
    reactor->reset();
    return 0;
  };
  ProcessSupervisorOptions supervision;
  supervision.workers = FLAGS_workers;
  supervision.name = std::string(program);
  if (absl::Status s = SuperviseWorkers(supervision, serve); !s.ok()) {
    return Fail(program, s.message());
  }
  return 0;
}

}  // namespace

absl::Status RefuseWorkers(absl::string_view why) {
  if (FLAGS_workers <= 1) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("--workers=", FLAGS_workers, ": ", why));
}

namespace {

// --threads > 1: the endpoints on a ReactorPool, with the policies of
// Policies::Wrap(pool, ...): a program's `wrap` and --idle_timeout per
// reactor, --max_connections across them.
int ServeOnPool(absl::string_view program, Factory* factory, WrapFactory wrap,
                std::vector<ServerEndpointSpec> specs, PoolFactory pool_factory) {
  absl::StatusOr<Spread> spread = ParseSpread(FLAGS_spread);
  if (!spread.ok()) return BadUsage(program, absl::StrCat("--spread: ", spread.status().message()));
  for (const ServerEndpointSpec& spec : specs) {
    if (spec.type == ServerEndpointSpec::Type::kUnix && *spread == Spread::kReusePort) {
      return BadUsage(program, "--spread=reuseport is for tcp endpoints: a unix socket "
                               "cannot be shared; use --spread=round_robin");
    }
  }
  Policies policies;  // outlives the pool
  ReactorOptions options;
  options.poller = FLAGS_reactor;
  absl::StatusOr<std::unique_ptr<ReactorPool>> pool =
      ReactorPool::Create(FLAGS_threads, options);
  if (!pool.ok()) {
    return BadUsage(program, absl::StrCat("--reactor: ", pool.status().message()));
  }
  // Before run() starts the threads: they inherit the blocked signals.
  if (absl::Status s = (*pool)->installSignalHandlers(); !s.ok()) {
    return Fail(program, s.message());
  }
  if (pool_factory != nullptr) factory = pool_factory(pool->get());
  factory = policies.Wrap(pool->get(), factory, wrap);
  std::vector<ListeningPort> listening;
  for (ServerEndpointSpec& spec : specs) {
    const int backlog = spec.backlog.value_or(FLAGS_backlog);
    // An ssl: endpoint listens as tcp does, its connections served in TLS.
    absl::StatusOr<Factory*> served = policies.ForEndpoint(pool->get(), spec, factory);
    if (!served.ok()) return Fail(program, served.status().message());
    absl::StatusOr<std::vector<Port*>> ports =
        spec.type == ServerEndpointSpec::Type::kUnix
            ? (*pool)->listenUNIX(spec.path, *served, *spread, backlog, spec.mode,
                                  spec.lockfile)
            : (*pool)->listenTCP(spec.port, *served, *spread, backlog, spec.interface);
    if (!ports.ok()) return Fail(program, ports.status().message());
    if (FLAGS_accept_rate > 0) {
      // The rate is the server's: shared out between the listeners.
      const double each = FLAGS_accept_rate / static_cast<double>(ports->size());
      for (Port* p : *ports) LimitAcceptRate(p, each);
    }
    listening.push_back(ListeningPort((*ports)[0]));
  }
  PrintListening(listening);
  (*pool)->run();
  return 0;
}

}  // namespace

int ServeForever(absl::string_view program, Factory* factory, WrapFactory wrap,
                 PoolFactory pool_factory) {
  absl::StatusOr<std::vector<ServerEndpointSpec>> specs = ListenSpecs(/*datagram=*/false);
  if (!specs.ok()) return BadUsage(program, specs.status().message());
  if (FLAGS_backlog < 1) {
    return BadUsage(program, absl::StrCat("invalid --backlog ", FLAGS_backlog,
                                          ": must be at least 1"));
  }
  if (FLAGS_max_connections < 0) {
    return BadUsage(program, absl::StrCat("invalid --max_connections ",
                                          FLAGS_max_connections, ": must be >= 0"));
  }
  if (!(FLAGS_idle_timeout >= 0) || FLAGS_idle_timeout > 1e9) {
    return BadUsage(program, absl::StrCat("invalid --idle_timeout ", FLAGS_idle_timeout,
                                          ": must be 0..1e9 seconds"));
  }
  if (!(FLAGS_accept_rate >= 0) || FLAGS_accept_rate > 1e9) {
    return BadUsage(program, absl::StrCat("invalid --accept_rate ", FLAGS_accept_rate,
                                          ": must be 0..1e9 per second"));
  }
  if (FLAGS_threads < 1 || FLAGS_threads > 1024) {
    return BadUsage(program,
                    absl::StrCat("invalid --threads ", FLAGS_threads, ": must be 1..1024"));
  }
  // Checked whether or not --threads uses it: a typo must not wait for the
  // day --threads is added.
  if (absl::Status s = ParseSpread(FLAGS_spread).status(); !s.ok()) {
    return BadUsage(program, absl::StrCat("--spread: ", s.message()));
  }
  // A server's connections are its descriptors: use all the system allows.
  rlimit files;
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  if (FLAGS_workers < 0 || FLAGS_workers > 1024) {
    return BadUsage(program, absl::StrCat("invalid --workers ", FLAGS_workers,
                                          ": must be 0..1024"));
  }
  if (FLAGS_workers > 1 && FLAGS_threads > 1) {
    return BadUsage(program, "--threads and --workers cannot be combined yet: use one or the other");
  }
  if (FLAGS_workers > 1) return ServeWithWorkers(program, *std::move(specs), factory, std::move(wrap));
  if (FLAGS_threads > 1) {
    return ServeOnPool(program, factory, std::move(wrap), *std::move(specs),
                       std::move(pool_factory));
  }
  Policies policies;  // outlives the reactor
  ReactorOptions options;
  options.poller = FLAGS_reactor;
  absl::StatusOr<std::unique_ptr<Reactor>> reactor = Reactor::Create(options);
  if (!reactor.ok()) {
    return BadUsage(program, absl::StrCat("--reactor: ", reactor.status().message()));
  }
  // Before anything else can start a thread: the signals must stay blocked
  // everywhere so that only the reactor's signalfd sees them.
  if (absl::Status s = (*reactor)->installSignalHandlers(); !s.ok()) {
    return Fail(program, s.message());
  }
  factory = policies.Wrap(reactor->get(), factory, wrap);
  // Every endpoint listens before the first line is printed, so that the
  // lines are all there is to read before the server is ready.
  std::vector<ListeningPort> ports;
  for (ServerEndpointSpec& spec : *specs) {
    std::unique_ptr<ServerEndpoint> endpoint =
        serverFromSpec(reactor->get(), std::move(spec), FLAGS_backlog);
    absl::StatusOr<ListeningPort> port = endpoint->listen(factory);
    if (!port.ok()) return Fail(program, port.status().message());
    if (FLAGS_accept_rate > 0 && port->stream() != nullptr) {
      LimitAcceptRate(port->stream(), FLAGS_accept_rate);
    }
    ports.push_back(*port);
  }
  PrintListening(ports);
  (*reactor)->run();
  return 0;
}

}  // namespace twist
