"""twist_dependencies(): the repositories twist's offline build needs.

twist's own WORKSPACE calls it, and so does a workspace that depends on twist
(see README.md, "Using twist from your own workspace"):

    local_repository(name = "twist", path = "/path/to/your/clone/of/twist")

    load("@twist//:deps.bzl", "twist_dependencies")

    twist_dependencies()

It declares, unless the workspace already declared a repository of that name
(so a build with internet access can declare the upstream ones first):

  - rules_cc, rules_java, remote_coverage_tools: what Bazel 4.2.3's
    @bazel_tools would otherwise download. rules_cc and remote_coverage_tools
    are small stand-ins kept in twist's third_party/; rules_java is Debian's
    bazel-rules-java.
  - com_google_absl, com_google_googletest, com_github_gflags_gflags, openssl,
    com_github_google_benchmark: Debian's -dev packages under the upstream
    names and labels (third_party/system_libs.bzl).

Every file is found through a label of this repository, never through a
path, so this works from whatever directory twist is checked out in.
"""

load("//third_party:system_libs.bzl", "system_libs")

def _stand_in_impl(ctx):
    ctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % ctx.name)
    if "BUILD" not in ctx.attr.files.values():
        ctx.file("BUILD", "")
    for label, dest in ctx.attr.files.items():
        ctx.symlink(label, dest)

# A repository made of a few files of twist's third_party/.
_stand_in_repository = repository_rule(
    implementation = _stand_in_impl,
    attrs = {"files": attr.label_keyed_string_dict(allow_files = True)},
    local = True,
)

def _declared(name):
    return native.existing_rule(name) != None

def twist_dependencies():
    """Declares what twist needs; skips names the workspace already has."""
    if not _declared("rules_cc"):
        _stand_in_repository(
            name = "rules_cc",
            files = {
                Label("//third_party:rules_cc/cc/BUILD.in"): "cc/BUILD",
                Label("//third_party:rules_cc/cc/defs.bzl"): "cc/defs.bzl",
            },
        )
    if not _declared("rules_java"):
        native.local_repository(
            name = "rules_java",
            path = "/usr/share/bazel/rules/java",  # Debian's bazel-rules-java
        )
    if not _declared("remote_coverage_tools"):
        _stand_in_repository(
            name = "remote_coverage_tools",
            files = {
                Label("//third_party:remote_coverage_tools/BUILD.in"): "BUILD",
                Label("//third_party:remote_coverage_tools/unavailable.sh"): "unavailable.sh",
            },
        )
    system_libs()
