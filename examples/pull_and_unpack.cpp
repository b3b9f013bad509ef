// Pulls an image with libimgpull and makes its root filesystem, printing one
// line per layer as it completes. Built against the installed library:
//
//   cmake -S examples -B build-example -DCMAKE_PREFIX_PATH=/usr/local && cmake --build build-example
//   ./build-example/pull_and_unpack localhost:5000/app:1.0 /tmp/app-rootfs [--root DIR]
#include <cstring>
#include <iostream>

#include <imgpull/client.h>

int main(int argc, char** argv) {
  if (argc != 3 && !(argc == 5 && std::strcmp(argv[3], "--root") == 0)) {
    std::cerr << "usage: pull_and_unpack REFERENCE ROOTFS_DIR [--root STORE_DIR]\n";
    return 2;
  }
  imgpull::ClientOptions options;
  if (argc == 5) options.root = argv[4];
  auto client = imgpull::Client::open(options);
  if (!client) {
    std::cerr << "error: " << client.error().message() << "\n";
    return 1;
  }

  imgpull::PullRequest request;
  request.rootfs = argv[2];
  request.on_event = [](const imgpull::PullEvent& event) {
    if (event.kind == imgpull::PullEvent::Kind::kLayerComplete) {
      std::cout << event.layer->short_hex() << ": Pull complete\n";
    }
  };
  auto pulled = client->pull(argv[1], request);
  if (!pulled) {
    std::cerr << "error: " << pulled.error().message() << "\n";
    return 1;
  }
  std::cout << "pulled " << pulled->name << " (" << pulled->layers.size() << " layers, "
            << pulled->bytes_downloaded << " bytes downloaded) into " << argv[2] << "\n";
  return 0;
}
