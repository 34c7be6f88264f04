// Bun as a third peer in bench/compare: a Bun.serve WebSocket pub/sub that
// speaks just enough of the LightStream protocol (docs/protocol.md) for
// ls-loadgen --target lightstream: AuthRequest (any token is accepted),
// SubscribeRequest (ws.subscribe on "owner:stream"), Publish (server.publish
// of a Data frame to every subscriber). Not a gateway: no authentication,
// permissions or queries — the floor of what a fan-out costs in Bun.
//
//   bun server.js PORT [QUEUE_LIMIT_BYTES]
const port = Number(process.argv[2] || 8080);
const queueLimit = Number(process.argv[3] || 1048576);

const server = Bun.serve({
  hostname: "127.0.0.1",
  port,
  fetch(req, srv) {
    if (new URL(req.url).pathname === "/lightstream/websocket" && srv.upgrade(req)) {
      return undefined;
    }
    return new Response("not found", { status: 404 });
  },
  websocket: {
    maxPayloadLength: 65536,
    // As the gateway's queue limit: a reader that falls this far behind
    // is closed, not buffered for without bound.
    backpressureLimit: queueLimit,
    closeOnBackpressureLimit: true,
    idleTimeout: 60,
    message(ws, text) {
      let msg;
      try {
        msg = JSON.parse(text);
      } catch {
        ws.close(4004, "malformed");
        return;
      }
      const m = msg.m || {};
      switch (msg.t) {
        case 1: // AuthRequest
          ws.send(JSON.stringify({ t: 2, m: { ok: true, connectionId: "bun" } }));
          break;
        case 6: // SubscribeRequest
          ws.subscribe(m.owner + ":" + m.stream);
          ws.send(JSON.stringify({ t: 7, m: { requestId: m.requestId, ok: true, subscriptionId: "s" } }));
          break;
        case 5: // Publish: one frame for every subscriber
          server.publish(m.owner + ":" + m.stream, JSON.stringify({
            t: 5, m: { owner: m.owner, stream: m.stream, sub: "s", data: m.data },
          }));
          if (m.requestId !== undefined) {
            ws.send(JSON.stringify({ t: 13, m: { requestId: m.requestId, ok: true } }));
          }
          break;
        default:
          break;
      }
    },
  },
});

console.log("bun " + Bun.version + " listening on 127.0.0.1:" + server.port);
