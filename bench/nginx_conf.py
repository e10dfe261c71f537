"""nginx as the HTTP benchmarks run it: Debian's nginx-light, one worker,
answering every request with `return 200 "Hello, World"` (text/plain), access
log off, on 127.0.0.1. bench/http.py and bench/http_cpu.py run it with its
master process, bench/http_instructions.py without (one process to measure
under callgrind or strace). (Not bench/http.py's own: a module named http
next to a script would hide the standard library's http package.)
"""

import os
import shutil

import run

CONF = """
daemon off;
master_process {master_process};
worker_processes 1;
{rlimit}pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections {worker_connections}; }}
http {{
  access_log off;
  default_type text/plain;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port}{backlog};
    location / {{ return 200 "Hello, World"; }}
  }}
}}
"""


def binary():
    for p in ("/usr/sbin/nginx", shutil.which("nginx")):
        if p and os.path.exists(p):
            return p
    run.fail("no nginx: tools/setup.sh installs Debian's nginx-light")


def command(workdir, port, nginx=None, master_process=True,
            worker_connections=4096, rlimit_nofile=20000, backlog=1024):
    """Writes workdir/nginx.conf for nginx on 127.0.0.1:port and returns the
    command that runs it in the foreground, its pid file, error log and
    temporary files in workdir. rlimit_nofile and backlog None: nginx's
    defaults."""
    conf = os.path.join(workdir, "nginx.conf")
    with open(conf, "w") as f:
        f.write(CONF.format(
            dir=workdir, port=port,
            master_process="on" if master_process else "off",
            worker_connections=worker_connections,
            rlimit=(f"worker_rlimit_nofile {rlimit_nofile};\n"
                    if rlimit_nofile else ""),
            backlog=f" backlog={backlog}" if backlog else ""))
    return [nginx or binary(), "-p", workdir, "-c", conf,
            "-e", os.path.join(workdir, "error.log")]
