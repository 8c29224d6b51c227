#include "registry/job_descriptions.h"

#include "registry/registry_conversion.h"

namespace pesc {

std::shared_ptr<const v1::JobDescription> JobDescriptions::of(const std::string& job_id, const JobSpec& spec) {
  std::shared_ptr<const v1::JobDescription>& made = made_[job_id];
  if (!made) made = std::make_shared<const v1::JobDescription>(description_for(job_id, spec));
  return made;
}

void JobDescriptions::forget(const std::string& job_id) { made_.erase(job_id); }

}  // namespace pesc
