// Child process of the s3rver test helper: serves a folder on 127.0.0.1 and reports its port over IPC.
// It runs apart from the tests because s3rver needs `--openssl-legacy-provider` (its ListObjectsV2
// continuation tokens use a legacy cipher) and must not share the test's event loop.
import S3rver from "s3rver";

const [directory, bucket] = process.argv.slice(2);
const server = new S3rver({
  address: "127.0.0.1",
  port: 0,
  silent: true,
  directory,
  configureBuckets: [{ name: bucket }],
});
const { port } = await server.run();
process.send({ port });
// The parent closing the IPC channel (stop() or its own exit) ends this process.
process.on("disconnect", () => {
  server.close().finally(() => process.exit(0));
});
