# The ACL policy nomad-chronicle's job needs, and no more. Nomad attaches it
# to the job's workload identity:
#
#   nomad acl policy apply -namespace default -job nomad-chronicle \
#     -description "nomad-chronicle: read the event stream" \
#     nomad-chronicle deploy/nomad/policy.hcl
#
# Without a management token the event stream serves only the topics a
# policy covers, so the job names them (--topic): Job, Evaluation,
# Allocation and Deployment need `read-job` in each namespace; Node needs
# `node:read`, which also lets ingest read the cluster's identity from
# /v1/agent/members. Listing jobs (`list-jobs`) lets ingest watch for new
# namespaces and, with `read-job`, read the lists it reconstructs state
# from after a gap.

namespace "*" {
  capabilities = ["list-jobs", "read-job"]
}

node {
  policy = "read"
}
