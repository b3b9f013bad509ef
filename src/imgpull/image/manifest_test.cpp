#include "imgpull/manifest.h"

#include <gtest/gtest.h>

namespace imgpull {
namespace {

const std::string kDigestA = "sha256:" + std::string(64, 'a');
const std::string kDigestB = "sha256:" + std::string(64, 'b');

std::string oci_manifest(bool with_media_type = true) {
  nlohmann::json j = {
      {"schemaVersion", 2},
      {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", kDigestA}, {"size", 10}}},
      {"layers", {{{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"}, {"digest", kDigestB}, {"size", 20}}}}};
  if (with_media_type) j["mediaType"] = media_type::kOciManifest;
  return j.dump();
}

std::string index_with(std::vector<nlohmann::json> platforms) {
  nlohmann::json j = {{"schemaVersion", 2}, {"mediaType", media_type::kOciIndex}, {"manifests", nlohmann::json::array()}};
  char c = 'c';
  for (auto& p : platforms) {
    j["manifests"].push_back({{"mediaType", media_type::kOciManifest},
                              {"digest", "sha256:" + std::string(64, c++)},
                              {"size", 100},
                              {"platform", p}});
  }
  return j.dump();
}

TEST(Manifest, ParsesOciManifest) {
  auto m = parse_manifest(oci_manifest(), "application/vnd.oci.image.manifest.v1+json");
  ASSERT_TRUE(m.ok()) << m.error().message();
  auto& im = std::get<ImageManifest>(*m);
  EXPECT_EQ(im.config.digest.str(), kDigestA);
  ASSERT_EQ(im.layers.size(), 1u);
  EXPECT_EQ(im.layers[0].size, 20);
}

TEST(Manifest, TypeFromContentTypeWhenDocumentHasNone) {
  // umoci writes manifests without mediaType.
  auto m = parse_manifest(oci_manifest(false), "application/vnd.oci.image.manifest.v1+json; charset=utf-8");
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_EQ(std::get<ImageManifest>(*m).media_type, media_type::kOciManifest);
}

TEST(Manifest, RejectsMediaTypeDisagreeingWithContentType) {
  auto m = parse_manifest(oci_manifest(), std::string(media_type::kDockerManifest));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code(), ErrorCode::kCorrupt);
  EXPECT_NE(m.error().message().find("disagrees"), std::string::npos);
}

TEST(Manifest, RejectsAmbiguousDocument) {
  auto j = nlohmann::json::parse(oci_manifest(false));
  j["manifests"] = nlohmann::json::array();
  auto m = parse_manifest(j.dump(), "application/json");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message().find("ambiguous"), std::string::npos);
}

TEST(Manifest, RejectsSchema1WithClearMessage) {
  auto m = parse_manifest(R"({"schemaVersion":1,"name":"x","tag":"latest","fsLayers":[]})",
                          "application/vnd.docker.distribution.manifest.v1+prettyjws");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code(), ErrorCode::kUnsupported);
  EXPECT_NE(m.error().message().find("schema 1"), std::string::npos);
}

TEST(Manifest, RejectsMalformed) {
  const char* cases[] = {
      "", "[]", "null", "{", R"({"schemaVersion":3})",
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]})",
      R"({"schemaVersion":2,"config":{"digest":"sha256:abc","size":1},"layers":[]})",
      R"({"schemaVersion":2,"config":{"digest":"sha256:../../../etc/passwd","size":1},"layers":[]})",
  };
  for (const char* c : cases) {
    auto m = parse_manifest(c, "application/vnd.oci.image.manifest.v1+json");
    EXPECT_FALSE(m.ok()) << c;
  }
  auto negative = nlohmann::json::parse(oci_manifest());
  negative["layers"][0]["size"] = -1;
  EXPECT_FALSE(parse_manifest(negative.dump(), "").ok());
}

TEST(Manifest, RejectsOversizedDocument) {
  std::string big(kMaxManifestBytes + 1, ' ');
  auto m = parse_manifest(big, "");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code(), ErrorCode::kTooLarge);
}

TEST(Manifest, UnknownMediaTypeIsUnsupported) {
  auto j = nlohmann::json::parse(oci_manifest());
  j["mediaType"] = "application/vnd.example+json";
  auto m = parse_manifest(j.dump(), "");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code(), ErrorCode::kUnsupported);
}

TEST(Platform, SelectsFromIndexAndListsWhatIsOffered) {
  auto m = parse_manifest(index_with({{{"os", "linux"}, {"architecture", "amd64"}},
                                      {{"os", "linux"}, {"architecture", "arm64"}, {"variant", "v8"}},
                                      {{"os", "linux"}, {"architecture", "arm"}, {"variant", "v6"}}}),
                          "");
  ASSERT_TRUE(m.ok()) << m.error().message();
  auto& index = std::get<ImageIndex>(*m);
  auto arm64 = select_platform(index, *Platform::parse("linux/arm64"));
  ASSERT_TRUE(arm64.ok());
  EXPECT_EQ(arm64->digest.hex()[0], 'd');
  auto amd64 = select_platform(index, *Platform::parse("linux/amd64"));
  ASSERT_TRUE(amd64.ok());
  EXPECT_EQ(amd64->digest.hex()[0], 'c');
  auto armv7 = select_platform(index, *Platform::parse("linux/arm/v7"));
  ASSERT_FALSE(armv7.ok());
  EXPECT_NE(armv7.error().message().find("linux/amd64, linux/arm64/v8, linux/arm/v6"), std::string::npos)
      << armv7.error().message();
  EXPECT_FALSE(select_platform(index, *Platform::parse("windows/amd64")).ok());
}

TEST(Platform, ParsesAndNormalises) {
  EXPECT_EQ(Platform::parse("linux/x86_64")->architecture, "amd64");
  EXPECT_EQ(Platform::parse("linux/arm/v7")->str(), "linux/arm/v7");
  EXPECT_FALSE(Platform::parse("linux").ok());
  EXPECT_FALSE(Platform::parse("linux//v7").ok());
  EXPECT_FALSE(Platform::parse("a/b/c/d").ok());
  EXPECT_TRUE(Platform::parse("linux/arm64")->matches(Platform{"linux", "arm64", "", ""}));
  EXPECT_TRUE(Platform::parse("linux/arm")->matches(Platform{"linux", "arm", "v7", ""}));
  EXPECT_FALSE(Platform::parse("linux/arm/v6")->matches(Platform{"linux", "arm", "v7", ""}));
  EXPECT_EQ(Platform::host().os, "linux");
}

TEST(Config, ParsesDiffIdsAndHistory) {
  std::string doc = R"({"created":"2024-01-02T03:04:05Z","architecture":"amd64","os":"linux",
    "rootfs":{"type":"layers","diff_ids":[")" + kDigestA + R"("]},
    "history":[{"created_by":"/bin/sh -c true","empty_layer":true},{"created_by":"COPY x"}]})";
  auto c = parse_config(doc);
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->created, "2024-01-02T03:04:05Z");
  ASSERT_EQ(c->diff_ids.size(), 1u);
  ASSERT_EQ(c->history.size(), 2u);
  EXPECT_TRUE(c->history[0].empty_layer);
  EXPECT_FALSE(parse_config(R"({"architecture":"amd64"})").ok());
}

// A history entry's empty_layer of another type than boolean threw
// nlohmann::json::type_error out of parse_config (std::terminate in imgpull);
// like the other history fields, a wrongly typed one now reads as absent.
// A config of deeply nested arrays parsed fine, then overflowed the stack
// when `inspect` serialised it (json::dump recurses per level).
TEST(ConfigRegression, DeepNestingIsRefused) {
  auto nested = [](size_t depth) {
    return R"({"rootfs":{"diff_ids":[]},"config":{"Labels":{"a":"[[[{{{"}},"x":)" +
           std::string(depth - 1, '[') + std::string(depth - 1, ']') + "}";
  };
  EXPECT_TRUE(parse_config(nested(kMaxConfigNesting)).ok());
  auto deep = parse_config(nested(kMaxConfigNesting + 1));
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.error().code(), ErrorCode::kCorrupt);
  auto very_deep = parse_config(nested(1'000'000));
  ASSERT_FALSE(very_deep.ok());
  EXPECT_NE(very_deep.error().message().find("nests deeper"), std::string::npos);
}

TEST(ConfigRegression, NonBooleanEmptyLayerIsFalseNotAnException) {
  for (const char* value : {"1", "\"true\"", "null", "[]", "{}", "1.5"}) {
    std::string doc = std::string(R"({"rootfs":{"diff_ids":[]},"history":[{"empty_layer":)") + value +
                      R"(},{"empty_layer":true}]})";
    auto c = parse_config(doc);
    ASSERT_TRUE(c.ok()) << value << ": " << c.error().message();
    ASSERT_EQ(c->history.size(), 2u);
    EXPECT_FALSE(c->history[0].empty_layer) << value;
    EXPECT_TRUE(c->history[1].empty_layer);
  }
}

std::string config_with_run(const std::string& run) {
  return R"({"author":"someone","rootfs":{"diff_ids":[]},"config":)" + run + "}";
}

TEST(Config, ParsesRunConfig) {
  auto c = parse_config(config_with_run(R"({
    "User":"www-data:www", "Entrypoint":["/docker-entrypoint.sh"], "Cmd":["nginx","-g","daemon off;"],
    "Env":["PATH=/usr/bin","A=b=c"], "WorkingDir":"/srv", "Labels":{"maintainer":"x","empty":null},
    "ExposedPorts":{"80/tcp":{},"443/tcp":{}}, "Volumes":{"/data":{}}, "StopSignal":"SIGQUIT",
    "Hostname":"box", "Healthcheck":{"Test":["NONE"]}})"));
  ASSERT_TRUE(c.ok()) << c.error().message();
  const RunConfig& run = c->run;
  EXPECT_EQ(c->author, "someone");
  EXPECT_EQ(run.user, "www-data:www");
  EXPECT_EQ(run.entrypoint, std::vector<std::string>{"/docker-entrypoint.sh"});
  EXPECT_EQ(run.cmd, (std::vector<std::string>{"nginx", "-g", "daemon off;"}));
  EXPECT_EQ(run.env, (std::vector<std::string>{"PATH=/usr/bin", "A=b=c"}));
  EXPECT_EQ(run.working_dir, "/srv");
  EXPECT_EQ(run.labels, (std::map<std::string, std::string>{{"empty", ""}, {"maintainer", "x"}}));
  EXPECT_EQ(run.exposed_ports, (std::vector<std::string>{"443/tcp", "80/tcp"}));
  EXPECT_EQ(run.volumes, std::vector<std::string>{"/data"});
  EXPECT_EQ(run.stop_signal, "SIGQUIT");
  EXPECT_EQ(run.hostname, "box");
}

TEST(Config, AbsentOrNullRunConfigIsEmpty) {
  for (const char* run : {"null", "{}", R"({"Cmd":null,"Entrypoint":null,"Env":null,"Labels":null,"User":null})"}) {
    auto c = parse_config(config_with_run(run));
    ASSERT_TRUE(c.ok()) << run << ": " << c.error().message();
    EXPECT_TRUE(c->run.cmd.empty() && c->run.entrypoint.empty() && c->run.env.empty()) << run;
    EXPECT_TRUE(c->run.labels.empty() && c->run.user.empty()) << run;
  }
  auto none = parse_config(R"({"rootfs":{"diff_ids":[]}})");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->run.cmd.empty());
}

// Docker reads Entrypoint and Cmd as a list or a single string (strslice).
TEST(Config, CmdAndEntrypointMayBeOneString) {
  auto c = parse_config(config_with_run(R"({"Entrypoint":"/init","Cmd":"run me"})"));
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->run.entrypoint, std::vector<std::string>{"/init"});
  EXPECT_EQ(c->run.cmd, std::vector<std::string>{"run me"});
}

TEST(Config, WronglyTypedRunFieldIsCorrupt) {
  struct Case {
    const char* run;
    const char* field;
  };
  for (const Case& c : {Case{R"({"Cmd":5})", "config.Cmd"}, Case{R"({"Cmd":["a",1]})", "config.Cmd"},
                        Case{R"({"Env":"A=b"})", "config.Env"}, Case{R"({"User":0})", "config.User"},
                        Case{R"({"Labels":{"a":1}})", "config.Labels"},
                        Case{R"({"Labels":["a"]})", "config.Labels"},
                        Case{R"({"ExposedPorts":["80/tcp"]})", "config.ExposedPorts"},
                        Case{R"({"WorkingDir":{}})", "config.WorkingDir"}, Case{"[]", "\"config\""}}) {
    auto parsed = parse_config(config_with_run(c.run));
    ASSERT_FALSE(parsed.ok()) << c.run;
    EXPECT_EQ(parsed.error().code(), ErrorCode::kCorrupt) << c.run;
    EXPECT_NE(parsed.error().message().find(c.field), std::string::npos) << parsed.error().message();
  }
}

TEST(Manifest, DockerToOciKeepsBlobs) {
  nlohmann::json docker = {
      {"schemaVersion", 2},
      {"mediaType", media_type::kDockerManifest},
      {"config", {{"mediaType", media_type::kDockerConfig}, {"digest", kDigestA}, {"size", 10}}},
      {"layers", {{{"mediaType", media_type::kDockerLayerGzip}, {"digest", kDigestB}, {"size", 20}}}}};
  auto m = parse_manifest(docker.dump(), "");
  ASSERT_TRUE(m.ok());
  auto oci = parse_manifest(to_oci_manifest(std::get<ImageManifest>(*m)), "");
  ASSERT_TRUE(oci.ok()) << oci.error().message();
  auto& om = std::get<ImageManifest>(*oci);
  EXPECT_EQ(om.media_type, media_type::kOciManifest);
  EXPECT_EQ(om.config.media_type, media_type::kOciConfig);
  EXPECT_EQ(om.layers[0].media_type, media_type::kOciLayerGzip);
  EXPECT_EQ(om.layers[0].digest.str(), kDigestB);
}

}  // namespace
}  // namespace imgpull
