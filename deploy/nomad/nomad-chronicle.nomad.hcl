# nomad-chronicle archiving the event stream of the cluster it runs on,
# into PostgreSQL.
#
# Before the first run:
#   1. the ACL policy (deploy/nomad/policy.hcl), attached to this job;
#   2. the database URL, in the job's Nomad Variable:
#        nomad var put nomad/jobs/nomad-chronicle \
#          db_url='postgres://chronicle:PASSWORD@db.internal/chronicle'
#   3. nomad job run -var version=0.1.0 deploy/nomad/nomad-chronicle.nomad.hcl
#
# Two allocations share one archive: one holds the writer lease and
# archives, the other stands by (healthy) and takes over when it stops.

variable "version" {
  type        = string
  description = "The nomad-chronicle release to run."
  default     = "0.1.0"
}

variable "artifact" {
  type        = string
  description = "Where the release's Linux x86_64 binary is downloaded from; `VERSION` is replaced by var.version."
  default     = "https://github.com/nomad-chronicle/nomad-chronicle/releases/download/vVERSION/nomad-chronicle-x86_64-unknown-linux-gnu.tar.gz"
}

job "nomad-chronicle" {
  type = "service"

  group "archiver" {
    count = 2

    network {
      port "metrics" {}
    }

    service {
      name     = "nomad-chronicle"
      port     = "metrics"
      provider = "nomad"
      # Prometheus (nomad_sd_configs) scrapes services tagged `prometheus`
      # at the path in their metadata.
      tags = ["prometheus"]
      meta {
        metrics_path = "/metrics"
      }

      check {
        name     = "ready"
        type     = "http"
        path     = "/readyz"
        interval = "10s"
        timeout  = "3s"
      }
    }

    restart {
      attempts = 10
      interval = "30m"
      delay    = "15s"
      mode     = "delay"
    }

    task "ingest" {
      driver = "exec"

      artifact {
        source = replace(var.artifact, "VERSION", var.version)
      }

      # NOMAD_TOKEN: this task's workload identity, which the policy above
      # is attached to.
      identity {
        env = true
      }

      # NOMAD_CHRONICLE_DB from the job's Nomad Variable, never in the jobspec.
      template {
        destination = "${NOMAD_SECRETS_DIR}/db.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/nomad-chronicle" }}NOMAD_CHRONICLE_DB={{ .db_url }}{{ end }}
        EOT
      }

      env {
        # The Nomad agent on this node.
        NOMAD_ADDR = "http://${attr.unique.network.ip-address}:4646"
      }

      config {
        command = "local/nomad-chronicle"
        args = [
          "ingest",
          "--cluster", "${node.region}",
          "--listen", "${NOMAD_ADDR_metrics}",
          "--log-format", "json",
          "--topic", "Job",
          "--topic", "Evaluation",
          "--topic", "Allocation",
          "--topic", "Deployment",
          "--topic", "Node",
        ]
      }

      # A stop commits what was received (up to 30 s of retries) first.
      kill_timeout = "45s"

      resources {
        cpu    = 200
        memory = 256
      }
    }
  }
}
