// pesc._core: a thin pybind11 layer over pesc.h. The Pythonic surface lives in
// the pure-Python package (pesc/__init__.py); this file only converts types,
// releases the GIL around every call that may block, and turns pesc::Error
// into the package's exception classes, once, here.
//
// No Python object is touched without the GIL: the library's threads never
// see Python, and blocking waits poll so that Ctrl-C is noticed between polls.
#include <pybind11/chrono.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "pesc/pesc.h"

namespace py = pybind11;

namespace {

// A pesc::Error raised while submitting: the package reports it as SubmitError.
struct SubmitFailure {
  pesc::Error error;
};

// Sets the Python error for `error` using pesc.errors.from_core(code, message, during).
void set_python_error(const pesc::Error& error, const char* during) {
  py::object exception =
      py::module_::import("pesc.errors").attr("from_core")(static_cast<int>(error.code()), error.what(), during);
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exception.ptr())), exception.ptr());
}

// How long one wait releases the GIL before checking for signals.
constexpr std::chrono::milliseconds kSignalPoll{100};

// The next finished rank, waiting up to `timeout_s` (negative: for ever). The
// GIL is released while waiting and taken back every kSignalPoll to run
// Python's signal handlers; if one raises (KeyboardInterrupt), the job is
// cancelled on the farm and the exception propagates.
std::optional<pesc::RankResult> next_rank(pesc::Job& job, double timeout_s) {
  using Clock = std::chrono::steady_clock;
  const bool forever = timeout_s < 0;
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(forever ? 0 : timeout_s));
  while (true) {
    auto slice = kSignalPoll;
    if (!forever) {
      slice = std::min(slice, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
      slice = std::max(slice, std::chrono::milliseconds(0));
    }
    std::optional<pesc::RankResult> result;
    bool done = false;
    {
      py::gil_scoped_release release;
      result = job.next(slice);
      done = result.has_value() || job.done();
    }
    if (done) return result;
    if (PyErr_CheckSignals() != 0) {
      py::error_already_set interrupted;  // holds the KeyboardInterrupt while we cancel
      std::string outcome;
      {
        py::gil_scoped_release release;
        outcome = job.cancel_for_interrupt();
      }
      // Whether the job is really stopped; the interrupt itself goes on.
      PySys_WriteStderr("pesc: %s\n", outcome.c_str());
      throw interrupted;
    }
    if (!forever && Clock::now() >= deadline) return std::nullopt;
  }
}

// Runs `call` without the GIL.
template <typename F>
auto unlocked(F&& call) {
  py::gil_scoped_release release;
  return call();
}

double seconds(std::chrono::milliseconds duration) { return static_cast<double>(duration.count()) / 1000.0; }

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "pesc's compiled core; use the `pesc` package instead.";
  m.attr("VERSION") = PESC_VERSION;

  py::register_exception_translator([](std::exception_ptr pointer) {
    try {
      if (pointer) std::rethrow_exception(pointer);
    } catch (const SubmitFailure& failure) {
      set_python_error(failure.error, "submit");
    } catch (const pesc::Error& error) {
      set_python_error(error, "");
    }
  });

  m.def("domain_for_file", [](const std::string& file_name) { return pesc::domain_for_file(file_name); },
        py::arg("file_name"), "The built-in domain a file's name suggests, as the pesc CLI infers it.");

  py::class_<pesc::Progress>(m, "Progress")
      .def_readonly("total", &pesc::Progress::total)
      .def_readonly("pending", &pesc::Progress::pending)
      .def_readonly("running", &pesc::Progress::running)
      .def_readonly("queued_at_workers", &pesc::Progress::queued_at_workers)
      .def_readonly("succeeded", &pesc::Progress::succeeded)
      .def_readonly("failed", &pesc::Progress::failed)
      .def_readonly("cancelled", &pesc::Progress::cancelled)
      .def_readonly("waiting", &pesc::Progress::waiting)
      .def_property_readonly("finished", &pesc::Progress::finished)
      .def("__repr__", [](const pesc::Progress& p) {
        return "Progress(finished=" + std::to_string(p.finished()) + "/" + std::to_string(p.total) +
               ", running=" + std::to_string(p.running) + ", queued_at_workers=" +
               std::to_string(p.queued_at_workers) + ", failed=" + std::to_string(p.failed) + ")";
      });

  py::class_<pesc::RankResult>(m, "RankResult")
      .def_readonly("rank", &pesc::RankResult::rank)
      .def_property_readonly("status", [](const pesc::RankResult& r) { return std::string(pesc::to_string(r.status)); })
      .def_readonly("exit_code", &pesc::RankResult::exit_code)
      .def_readonly("signal", &pesc::RankResult::signal)
      .def_readonly("output", &pesc::RankResult::output)
      .def_readonly("worker", &pesc::RankResult::worker)
      .def_property_readonly("duration", [](const pesc::RankResult& r) { return seconds(r.duration); })
      .def_readonly("start", &pesc::RankResult::start)
      .def_readonly("end", &pesc::RankResult::end)
      .def_property_readonly("cpu_time", [](const pesc::RankResult& r) { return seconds(r.cpu_time); })
      .def_readonly("max_rss_kb", &pesc::RankResult::max_rss_kb)
      .def_readonly("attempt", &pesc::RankResult::attempt)
      .def_readonly("has_files", &pesc::RankResult::has_files)
      .def_readonly("error", &pesc::RankResult::error)
      .def_readonly("limit_exceeded", &pesc::RankResult::limit_exceeded)
      .def_property_readonly("failure_class",
                             [](const pesc::RankResult& r) { return std::string(pesc::to_string(r.failure_class)); })
      .def_readonly("left_out", &pesc::RankResult::left_out)
      .def_property_readonly("ok", &pesc::RankResult::ok)
      .def("__repr__", [](const pesc::RankResult& r) {
        return "RankResult(rank=" + std::to_string(r.rank) + ", status='" + pesc::to_string(r.status) +
               "', exit_code=" + std::to_string(r.exit_code) + ", worker='" + r.worker + "')";
      });

  py::class_<pesc::WorkerReport>(m, "WorkerReport")
      .def_readonly("worker", &pesc::WorkerReport::worker)
      .def_readonly("first_lane", &pesc::WorkerReport::first_lane)
      .def_readonly("slots", &pesc::WorkerReport::slots)
      .def_readonly("ranks", &pesc::WorkerReport::ranks)
      .def_readonly("failed", &pesc::WorkerReport::failed)
      .def_property_readonly("busy", [](const pesc::WorkerReport& w) { return seconds(w.busy); })
      .def_property_readonly("mean_rank_time", [](const pesc::WorkerReport& w) { return seconds(w.mean_rank_time); })
      .def_property_readonly("max_rank_time", [](const pesc::WorkerReport& w) { return seconds(w.max_rank_time); })
      .def_readonly("max_rank", &pesc::WorkerReport::max_rank)
      .def_readonly("retried_ranks", &pesc::WorkerReport::retried_ranks)
      .def_readonly("lost_attempts", &pesc::WorkerReport::lost_attempts)
      .def_readonly("utilization", &pesc::WorkerReport::utilization)
      .def_property_readonly("paused", [](const pesc::WorkerReport& w) { return seconds(w.paused); });

  py::class_<pesc::PausedStretch>(m, "PausedStretch")
      .def_readonly("first_lane", &pesc::PausedStretch::first_lane)
      .def_readonly("lanes", &pesc::PausedStretch::lanes)
      .def_property_readonly("start", [](const pesc::PausedStretch& p) { return seconds(p.start); })
      .def_property_readonly("end", [](const pesc::PausedStretch& p) { return seconds(p.end); })
      .def_readonly("reason", &pesc::PausedStretch::reason);

  py::class_<pesc::TimelineBar>(m, "TimelineBar")
      .def_readonly("rank", &pesc::TimelineBar::rank)
      .def_readonly("lane", &pesc::TimelineBar::lane)
      .def_property_readonly("start", [](const pesc::TimelineBar& b) { return seconds(b.start); })
      .def_property_readonly("end", [](const pesc::TimelineBar& b) { return seconds(b.end); })
      .def_property_readonly("status", [](const pesc::TimelineBar& b) { return std::string(pesc::to_string(b.status)); });

  // Durations in seconds (float), as RankResult's.
  py::class_<pesc::JobReport>(m, "JobReport")
      .def_readonly("job_id", &pesc::JobReport::job_id)
      .def_readonly("ranks", &pesc::JobReport::ranks)
      .def_readonly("succeeded", &pesc::JobReport::succeeded)
      .def_readonly("failed", &pesc::JobReport::failed)
      .def_readonly("cancelled", &pesc::JobReport::cancelled)
      .def_readonly("never_ran", &pesc::JobReport::never_ran)
      .def_readonly("slots", &pesc::JobReport::slots)
      .def_readonly("started", &pesc::JobReport::started)
      .def_readonly("finished", &pesc::JobReport::finished)
      .def_property_readonly("wall", [](const pesc::JobReport& r) { return seconds(r.wall); })
      .def_property_readonly("rank_time", [](const pesc::JobReport& r) { return seconds(r.rank_time); })
      .def_readonly("speedup", &pesc::JobReport::speedup)
      .def_readonly("efficiency", &pesc::JobReport::efficiency)
      .def_property_readonly("lost", [](const pesc::JobReport& r) { return seconds(r.lost()); })
      .def_property_readonly("lost_parts",
                             [](const pesc::JobReport& r) {
                               return std::vector<std::pair<std::string, double>>{
                                   {"before_first_start", seconds(r.lost_before_first_start)},
                                   {"ramp_up", seconds(r.lost_ramp_up)},
                                   {"between_ranks", seconds(r.lost_between_ranks)},
                                   {"tail", seconds(r.lost_tail)},
                                   {"after_last_end", seconds(r.lost_after_last_end)},
                                   {"paused", seconds(r.lost_paused)}};
                             })
      .def_property_readonly("overhead_per_rank",
                             [](const pesc::JobReport& r) { return static_cast<double>(r.overhead_per_rank.count()) / 1e6; })
      .def_readonly("lanes", &pesc::JobReport::lanes)
      .def_readonly("workers", &pesc::JobReport::workers)
      .def_readonly("timeline", &pesc::JobReport::timeline)
      .def_property_readonly("paused", [](const pesc::JobReport& r) { return seconds(r.paused); })
      .def_readonly("paused_reasons", &pesc::JobReport::paused_reasons)
      .def_readonly("paused_stretches", &pesc::JobReport::paused_stretches)
      .def("to_text", &pesc::JobReport::to_text)
      .def("__str__", &pesc::JobReport::to_text)
      .def("timeline_svg", &pesc::JobReport::timeline_svg)
      .def("_repr_svg_", &pesc::JobReport::timeline_svg)  // Jupyter draws the timeline
      .def("__repr__", [](const pesc::JobReport& r) {
        char speedup[32];
        std::snprintf(speedup, sizeof speedup, "%.2f", r.speedup);
        return "<pesc.JobReport job=" + r.job_id + " ranks=" + std::to_string(r.ranks) + " slots=" +
               std::to_string(r.slots) + " speedup=" + speedup + ">";
      });

  py::class_<pesc::Results>(m, "Results")
      .def("__len__", &pesc::Results::size)
      .def(
          "__getitem__",
          [](const pesc::Results& results, size_t rank) {
            if (rank >= results.size()) throw py::index_error("rank " + std::to_string(rank) + " out of range");
            return results[rank];
          },
          py::arg("rank"))
      .def("output", &pesc::Results::output)
      .def("failed_ranks", &pesc::Results::failed_ranks)
      .def_property_readonly("ok", &pesc::Results::ok)
      .def_property_readonly("job_id", &pesc::Results::job_id)
      .def(
          "save", [](const pesc::Results& results, const std::filesystem::path& dir) { unlocked([&] { results.save(dir); }); },
          py::arg("dir"))
      .def(
          "read_file",
          [](const pesc::Results& results, size_t rank, const std::filesystem::path& relative) {
            if (rank >= results.size()) throw py::index_error("rank " + std::to_string(rank) + " out of range");
            std::string bytes = unlocked([&] { return results.read_file(rank, relative); });
            return py::bytes(bytes);
          },
          py::arg("rank"), py::arg("relative"))
      .def("report", [](const pesc::Results& results) { return unlocked([&] { return results.report(); }); })
      .def(
          "retry",
          [](const pesc::Results& results, const std::vector<int>& ranks) {
            return unlocked([&] { return results.retry(ranks); });
          },
          py::arg("ranks") = std::vector<int>());

  py::class_<pesc::RankLog>(m, "RankLog")
      .def(
          "next",
          [](pesc::RankLog& log, double timeout_s) -> std::optional<py::bytes> {
            auto timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000.0));
            std::optional<std::string> piece = unlocked([&] { return log.next(timeout); });
            if (!piece) return std::nullopt;
            return py::bytes(*piece);
          },
          py::arg("timeout"),
          "The next piece of the rank's output.txt (bytes), or None when `timeout` seconds pass first or it ended.")
      .def_property_readonly("ended", &pesc::RankLog::ended);

  py::class_<pesc::Job>(m, "Job")
      .def_property_readonly("id", &pesc::Job::id)
      .def_property_readonly("repetitions", &pesc::Job::repetitions)
      .def("next", &next_rank, py::arg("timeout") = -1.0,
           "The next rank to finish, or None when all were returned or `timeout` seconds passed (negative: no "
           "limit). Ctrl-C cancels the job and raises KeyboardInterrupt.")
      .def("results", [](pesc::Job& job) {
        while (next_rank(job, -1.0)) {
        }
        return unlocked([&] { return job.wait(); });
      })
      .def("progress", [](const pesc::Job& job) { return unlocked([&] { return job.progress(); }); })
      .def("done", [](const pesc::Job& job) { return unlocked([&] { return job.done(); }); })
      .def("cancel", [](pesc::Job& job) { unlocked([&] { job.cancel(); }); })
      .def(
          "retry", [](pesc::Job& job, const std::vector<int>& ranks) { return unlocked([&] { return job.retry(ranks); }); },
          py::arg("ranks") = std::vector<int>())
      .def(
          "log", [](const pesc::Job& job, int rank, bool follow) { return unlocked([&] { return job.log(rank, follow); }); },
          py::arg("rank"), py::arg("follow") = true);

  py::class_<pesc::Farm>(m, "Farm")
      .def(py::init([](const std::string& domain, const std::string& coordinator,
                       const std::filesystem::path& state_dir, int slots, const std::string& user,
                       const std::optional<pesc::NamedOptions>& pool) {
             pesc::FarmOptions options{.coordinator = coordinator, .state_dir = state_dir, .slots = slots, .user = user};
             if (pool) options.pool = pesc::pool_options_from(*pool);
             py::gil_scoped_release release;
             return pesc::Farm(domain, options);
           }),
           py::arg("domain"), py::arg("coordinator") = "", py::arg("state_dir") = std::filesystem::path(),
           py::arg("slots") = 0, py::arg("user") = "", py::arg("pool") = std::nullopt,
           "`pool`: PoolOptions by name, each a list of texts (pesc::pool_options_from): the farm is then a "
           "session whose ranks run on batch-system pilots.")
      .def("with_domain", [](const pesc::Farm& farm, const std::string& domain) { return farm.with_domain(domain); })
      .def("close", [](pesc::Farm& farm) { unlocked([&] { farm.close(); }); })
      .def(
          "map",
          [](pesc::Farm& farm, const std::filesystem::path& process, int repetitions,
             const std::vector<std::string>& parameters, const pesc::NamedOptions& options) {
            py::gil_scoped_release release;
            try {
              return farm.map(process, repetitions, parameters, pesc::map_options_from(options));
            } catch (const pesc::Error& error) {
              throw SubmitFailure{error};
            }
          },
          py::arg("process"), py::arg("repetitions"), py::arg("parameters") = std::vector<std::string>(),
          py::arg("options") = pesc::NamedOptions(),
          "Submits a job; `options` are MapOptions by name, each a list of texts (pesc::map_options_from).")
      .def("attach", [](pesc::Farm& farm, const std::string& id) { return unlocked([&] { return farm.attach(id); }); },
           py::arg("job_id"))
      .def("remove_job", [](pesc::Farm& farm, const std::string& id) { unlocked([&] { farm.remove_job(id); }); },
           py::arg("job_id"))
      .def(
          "log",
          [](pesc::Farm& farm, const std::string& id, int rank, bool follow) {
            return unlocked([&] { return farm.log(id, rank, follow); });
          },
          py::arg("job_id"), py::arg("rank"), py::arg("follow") = true)
      .def("describe", &pesc::Farm::describe);
}
