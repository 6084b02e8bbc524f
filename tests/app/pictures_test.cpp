// launch/pictures.py, run as users run it (Debian's /usr/bin/python3): `tsne` on a small shard set
// (the shared fixture) and an h5py export whose embeddings separate the classes
// (tests/app/python/write_export.py), `curves` on a --metrics-file in dist_train's format
// (src/train/training_log.cpp, src/eval/metrics_format.cpp). Checks that the PNGs are written at the
// sizes the script's constants give, nothing else is left in the output directory, and that every
// bad input ends non-zero with one line naming the file, no traceback and no picture.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "synthetic_shards.h"
#include "test_support.h"

namespace {
namespace fs = std::filesystem;
using dml::test::CommandResult;
using dml::test::TempDir;

// PNG sizes: figure size in inches x DPI, as launch/pictures.py's constants DPI = 100,
// TSNE_THUMBNAILS_FIGSIZE = (14, 14), TSNE_CLASSES_FIGSIZE = (14, 10), CURVES_FIGSIZE = (15, 4.5).
constexpr double kDpi = 100;
const std::pair<int64_t, int64_t> kThumbnailsPx{static_cast<int64_t>(14 * kDpi), static_cast<int64_t>(14 * kDpi)};
const std::pair<int64_t, int64_t> kClassesPx{static_cast<int64_t>(14 * kDpi), static_cast<int64_t>(10 * kDpi)};
const std::pair<int64_t, int64_t> kCurvesPx{static_cast<int64_t>(15 * kDpi), static_cast<int64_t>(4.5 * kDpi)};

CommandResult pictures(const std::vector<std::string>& args) {
  std::string command = std::string(DML_TEST_PYTHON) + " " + dml::test::shell_quote(dml::test::source_path("launch/pictures.py"));
  for (const auto& a : args) command += " " + dml::test::shell_quote(a);
  return dml::test::run_command(command);
}

// Width and height from the IHDR chunk (bytes 16..23, big-endian); {-1, -1} if not a PNG.
std::pair<int64_t, int64_t> png_size(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::array<unsigned char, 24> header{};
  if (!in.read(reinterpret_cast<char*>(header.data()), header.size())) return {-1, -1};
  const std::array<unsigned char, 8> signature{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (!std::equal(signature.begin(), signature.end(), header.begin())) return {-1, -1};
  auto be32 = [&](size_t at) {
    return (int64_t{header[at]} << 24) | (int64_t{header[at + 1]} << 16) | (int64_t{header[at + 2]} << 8) | header[at + 3];
  };
  return {be32(16), be32(20)};
}

bool contains(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

// 5 classes x 40 images (200), in a shuffled order, 2 shards, ids 1000 + 7 i: split "test" in `dir`.
void write_shards(const std::string& dir, int64_t channels, bool class_names, int64_t first_id = 1000) {
  dml::test::SyntheticSpec spec;
  spec.num_classes = 5;
  spec.per_class = 40;
  spec.height = spec.width = 12;
  spec.channels = channels;
  spec.class_names = class_names;
  spec.interleaved = true;
  spec.first_id = first_id;
  spec.id_stride = 7;
  fs::create_directories(dir);
  dml::test::make_synthetic_split(spec).write(dir, "test", /*shards=*/2);
}

void write_export(const std::string& shards, const std::string& out, const std::vector<std::string>& options = {}) {
  std::vector<std::string> args{shards, "test", out};
  args.insert(args.end(), options.begin(), options.end());
  const CommandResult r = dml::test::run_python_file("tests/app/python/write_export.py", args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

TEST(PicturesTsne, ThumbnailsAndClassesFromASampleWithTheShardsNames) {
  TempDir dir;
  const std::string shards = dir.file("shards"), out = dir.file("out");
  write_shards(shards, /*channels=*/3, /*class_names=*/true);
  write_export(shards, dir.file("e.h5"));  // no class_names in the export; data_path = shards
  const CommandResult r = pictures({"tsne", "--export", dir.file("e.h5"), "--out-dir", out, "--max-points", "150"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "sampled 150 of 200 rows uniformly without replacement")) << r.output;
  EXPECT_TRUE(contains(r.output, "class names: the shards' class_names attribute")) << r.output;
  EXPECT_TRUE(contains(r.output, "wrote " + out + "/tsne_thumbnails.png")) << r.output;
  EXPECT_TRUE(contains(r.output, "wrote " + out + "/tsne_classes.png")) << r.output;
  EXPECT_EQ(dml::test::list_files(out), (std::vector<std::string>{"tsne_classes.png", "tsne_thumbnails.png"}));
  EXPECT_EQ(png_size(out + "/tsne_thumbnails.png"), kThumbnailsPx);
  EXPECT_EQ(png_size(out + "/tsne_classes.png"), kClassesPx);
}

TEST(PicturesTsne, GrayThumbnailsFromDataPathWithTheExportsNames) {
  TempDir dir;
  const std::string shards = dir.file("shards"), out = dir.file("out");
  write_shards(shards, /*channels=*/1, /*class_names=*/false);
  // The export's data_path is elsewhere: --data-path overrides it.
  write_export(shards, dir.file("e.h5"), {"--class-names", "zero,one,two,three,four", "--data-path-attr", dir.file("gone")});
  const CommandResult r = pictures({"tsne", "--export", dir.file("e.h5"), "--out-dir", out, "--data-path", shards,
                                    "--thumbnail-px", "12", "--seed", "5"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "using all 200 rows")) << r.output;
  EXPECT_TRUE(contains(r.output, "class names: the export's class_names attribute")) << r.output;
  EXPECT_EQ(png_size(out + "/tsne_thumbnails.png"), kThumbnailsPx);
  EXPECT_EQ(png_size(out + "/tsne_classes.png"), kClassesPx);
}

// Training and evaluation records as dist_train writes them: untrained evaluation, 3 epochs of two
// records each, an evaluation after every epoch (NMI null: --nmi not given).
std::string metrics_lines() {
  std::string text = R"({"epoch": 0, "step": 0, "model": "untrained", "recall@1":0.31,"recall@2":0.45,"precision@1":0.31,"r_precision":0.2,"map@r":0.1,"nmi":null})"
                     "\n";
  for (int epoch = 0; epoch < 3; ++epoch) {
    for (int iteration : {5, 10}) {
      const int step = epoch * 10 + iteration;
      text += "{\"epoch\": " + std::to_string(epoch) + ", \"iteration\": " + std::to_string(iteration) +
              ", \"step\": " + std::to_string(step) + ", \"loss\": " + std::to_string(0.9 - 0.05 * step) +
              ", \"active_pairs\": 120, \"beta_mean\": 1.2, \"lr\": 0.001, \"images_per_sec\": 500, \"eta_seconds\": 3}\n";
    }
    text += "{\"epoch\": " + std::to_string(epoch) + ", \"step\": " + std::to_string(epoch * 10 + 10) +
            ", \"model\": \"trained\", \"recall@1\":" + std::to_string(0.5 + 0.1 * epoch) +
            ",\"recall@2\":0.7,\"precision@1\":0.5,\"r_precision\":0.3,\"map@r\":" + std::to_string(0.2 + 0.05 * epoch) +
            ",\"nmi\":null}\n";
  }
  return text;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

TEST(PicturesCurves, LossRecallAndMapPerEpoch) {
  TempDir dir;
  write_text(dir.file("m.jsonl"), metrics_lines());
  const std::string png = dir.file("plots/curves.png");
  const CommandResult r = pictures({"curves", "--metrics-file", dir.file("m.jsonl"), "--out", png});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "6 training records, 4 evaluations")) << r.output;
  EXPECT_TRUE(contains(r.output, "wrote " + png)) << r.output;
  EXPECT_EQ(dml::test::list_files(dir.file("plots")), std::vector<std::string>{"curves.png"});
  EXPECT_EQ(png_size(png), kCurvesPx);
}

TEST(PicturesCurves, AppendedRunReplacesTheEarlierRecordsAndAnUnfinishedLineIsSkipped) {
  TempDir dir;
  // An earlier run's records, then a new run (dist_train appends), then a line being written.
  write_text(dir.file("m.jsonl"), metrics_lines() + metrics_lines() + R"({"epoch": 3, "iteration": 5, "st)");
  const CommandResult r = pictures({"curves", "--metrics-file", dir.file("m.jsonl"), "--out", dir.file("c.png")});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "steps restart at line 11")) << r.output;
  EXPECT_TRUE(contains(r.output, "skipped the incomplete last line 21")) << r.output;
  EXPECT_TRUE(contains(r.output, "6 training records, 4 evaluations")) << r.output;
  EXPECT_EQ(png_size(dir.file("c.png")), kCurvesPx);
}

// A bad input: exit code non-zero, one line of output (the error; `only_line` false: its last line)
// naming `named`, no traceback, no file in `out_dir`.
void expect_refused(const std::vector<std::string>& args, const std::string& named, const std::string& out_dir,
                    bool only_line = true) {
  const CommandResult r = pictures(args);
  std::string shown;
  for (const auto& a : args) shown += a + " ";
  EXPECT_NE(r.exit_code, 0) << shown << "\n" << r.output;
  std::string text = r.output;
  if (!text.empty() && text.back() == '\n') text.pop_back();
  const std::string last = text.substr(text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1) + "\n";
  EXPECT_TRUE(contains(last, "error: ")) << shown << "\n" << r.output;
  EXPECT_TRUE(contains(last, named)) << shown << " should name " << named << "\n" << r.output;
  EXPECT_FALSE(contains(r.output, "Traceback")) << shown << "\n" << r.output;
  if (only_line) {
    EXPECT_EQ(last, r.output) << shown << ": more than the error line\n" << r.output;
  }
  EXPECT_EQ(dml::test::list_files(out_dir), std::vector<std::string>{}) << shown;
}

TEST(PicturesBadInput, TsneRefusesAndWritesNothing) {
  TempDir dir;
  const std::string shards = dir.file("shards"), out = dir.file("out");
  write_shards(shards, /*channels=*/3, /*class_names=*/true);
  write_export(shards, dir.file("no_format.h5"), {"--no-format"});
  write_export(shards, dir.file("other_format.h5"), {"--format", "something-else"});
  write_export(shards, dir.file("version2.h5"), {"--format-version", "2"});
  write_export(shards, dir.file("e.h5"), {"--data-path-attr", dir.file("moved")});
  write_text(dir.file("text.h5"), "not HDF5\n");
  // Only the first of the two shards; and a shard set of other images (other ids).
  fs::create_directories(dir.file("half"));
  fs::copy_file(dml::test::shard_path(shards, "test", 0, 2), dml::test::shard_path(dir.file("half"), "test", 0, 2));
  write_shards(dir.file("other"), 3, true, /*first_id=*/5000);

  auto tsne = [&](const std::string& export_path, std::vector<std::string> more = {}) {
    std::vector<std::string> args{"tsne", "--export", export_path, "--out-dir", out};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  };
  expect_refused(tsne(dir.file("missing.h5")), dir.file("missing.h5"), out);
  expect_refused(tsne(dir.file("text.h5")), dir.file("text.h5"), out);
  expect_refused(tsne(dir.file("no_format.h5")), dir.file("no_format.h5"), out);
  expect_refused(tsne(dir.file("other_format.h5")), dir.file("other_format.h5"), out);
  expect_refused(tsne(dir.file("version2.h5")), dir.file("version2.h5"), out);
  expect_refused(tsne(dir.file("e.h5")), dir.file("moved"), out);  // shards gone from the export's data_path
  expect_refused(tsne(dir.file("e.h5"), {"--data-path", dir.file("empty")}), dir.file("empty"), out);
  expect_refused(tsne(dir.file("e.h5"), {"--data-path", dir.file("half")}), "test-00001-of-00002.h5", out);
  expect_refused(tsne(dir.file("e.h5"), {"--data-path", dir.file("other")}), dir.file("e.h5"), out);
}

TEST(PicturesBadInput, CurvesRefusesAndWritesNothing) {
  TempDir dir;
  const std::string out = dir.file("out");
  fs::create_directories(out);
  write_text(dir.file("empty.jsonl"), "");
  write_text(dir.file("no_records.jsonl"), "{}\n{\"note\": 1}\n\n");
  write_text(dir.file("broken.jsonl"), metrics_lines() + "not json\n" + metrics_lines());
  for (const std::string name : {"missing.jsonl", "empty.jsonl", "no_records.jsonl", "broken.jsonl"}) {
    expect_refused({"curves", "--metrics-file", dir.file(name), "--out", out + "/c.png"}, dir.file(name), out);
  }
  // A picture that cannot be renamed into place (--out is a directory): the temporary file goes too.
  write_text(dir.file("m.jsonl"), metrics_lines());
  fs::create_directories(out + "/taken.png");
  expect_refused({"curves", "--metrics-file", dir.file("m.jsonl"), "--out", out + "/taken.png"}, out + "/taken.png", out,
                 /*only_line=*/false);
}

}  // namespace
