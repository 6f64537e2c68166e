// express-session peer: the same four routes, on express-session's MemoryStore or on connect-redis.
// BENCH_STORE=memory|redis, BENCH_REDIS_URL, PORT. Several processes on one port: cluster.js.
import express from "express";
import session from "express-session";
import { RedisStore } from "connect-redis";
import { createClient } from "redis";

const SECRET = "bench-only-secret-key-7f3a9c1e5b2d8f4a6c0e9b3d7a1f5c8e";
const LIFETIME_MS = 14 * 24 * 3600 * 1000;
const port = Number(process.env.PORT || 8000);
const storeName = process.env.BENCH_STORE || "memory";

let store;
if (storeName === "redis") {
  const client = createClient({ url: process.env.BENCH_REDIS_URL || "redis://127.0.0.1:6379/15" });
  await client.connect();
  store = new RedisStore({ client, prefix: "express:" });
} else {
  store = new session.MemoryStore();
}

const app = express();
app.set("etag", false);
app.set("x-powered-by", false);
const sessions = session({
  store,
  secret: SECRET,
  name: "session",
  resave: false,
  saveUninitialized: false,
  cookie: { maxAge: LIFETIME_MS, httpOnly: true, sameSite: "lax", secure: false },
});

app.get("/bare", (req, res) => res.json({ ok: true }));
app.get("/setup", sessions, (req, res) => {
  req.session.counter = 0;
  req.session.payload = "x".repeat(Number(req.query.size || 0));
  res.json({ ok: true });
});
app.get("/read", sessions, (req, res) => res.json({ counter: req.session.counter || 0 }));
app.post("/write", sessions, (req, res) => {
  req.session.counter = (req.session.counter || 0) + 1;
  res.json({ counter: req.session.counter });
});

// The line bench/run.py waits for, once per process, before it sends any load.
app.listen(port, "127.0.0.1", () => console.log(`listening ${process.pid}`));
