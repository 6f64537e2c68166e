// Several express processes on one port, the way express apps are usually scaled on one machine: Node's
// cluster module, whose primary accepts the connections and hands them to the workers in turn.
// BENCH_WORKERS (default 2) workers, each running server.js with the same environment.
import cluster from "node:cluster";

const count = Number(process.env.BENCH_WORKERS || 2);
cluster.setupPrimary({ exec: new URL("./server.js", import.meta.url).pathname });
for (let i = 0; i < count; i++) cluster.fork();
let stopping = false;
cluster.on("exit", (worker, code) => {
  if (!stopping) {
    console.error(`worker ${worker.process.pid} exited with ${code}`);
    process.exit(1);
  }
});
process.on("SIGTERM", () => {
  stopping = true;
  for (const worker of Object.values(cluster.workers)) worker.kill("SIGTERM");
  process.exit(0);
});
