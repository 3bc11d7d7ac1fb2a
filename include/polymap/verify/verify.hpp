// polymap/verify/verify.hpp — the verification toolkit in one include:
// recorder (history.hpp), sequential model (model.hpp), per-key
// linearizability checker (checker.hpp), recorded<M> (recorded.hpp),
// schedule perturbation (perturb.hpp) and the stress harness (stress.hpp).
#pragma once

#include "polymap/verify/checker.hpp"
#include "polymap/verify/history.hpp"
#include "polymap/verify/model.hpp"
#include "polymap/verify/perturb.hpp"
#include "polymap/verify/recorded.hpp"
#include "polymap/verify/stress.hpp"
