// handsdk serve: the page. Camera -> JPEG frames over a WebSocket -> the tracker's results drawn
// over the frame they belong to. Plain JavaScript, no dependencies, no build step.
// At most one frame is in flight: the next is sent when the previous result (or error) is back,
// so latency cannot build up. window.handsdkStats exposes what the page received (for tests).
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const MAGIC = [72, 83, 70, 49]; // "HSF1": the frame header (docs/serve.md)
  const FINGERS = ["#ffd166", "#ef476f", "#06d6a0", "#118ab2", "#c77dff"]; // thumb .. pinky
  const KEY_NAMES = { gesture: "gesture", sign: "letter", digit: "digit" };
  const RTT_KEEP = 20000;

  const stats = {};
  function resetStats() {
    Object.assign(stats, {
      frames: 0, withHands: 0, hands: 0, hands21: 0, sent: 0, labels: {}, errors: {}, rtt: [],
      rttP50: null, rttP99: null, fps: 0, meanFps: 0, serverMs: null, serverTotalMs: 0, firstAt: null,
      lastAt: null,
    });
  }
  resetStats();
  Object.assign(stats, { connected: false, closeCode: null, closeReason: "", config: null, spelled: "",
                         lastResult: null, size: null, file: null, hello: null });
  window.handsdkStats = stats;
  window.handsdkResetStats = resetStats;

  const view = $("view");
  const vctx = view.getContext("2d");
  const capture = document.createElement("canvas"); // the frame in flight, drawn again with its result
  const cctx = capture.getContext("2d");
  const video = document.createElement("video");
  video.muted = true;
  video.playsInline = true;
  // in the page (under the canvas), so the browser decodes it and reports each new camera frame
  video.className = "source";
  Object.assign(video.style, { position: "absolute", left: "0", top: "0", width: "64px", opacity: "0.01",
                               pointerEvents: "none", zIndex: "-1" });
  $("stage").appendChild(video);

  let ws = null;
  let connections = [];
  let inFlight = null; // {id, t} of the frame sent and not answered yet
  // config messages sent and not answered yet: while one is, the server's answer to an earlier one
  // must not undo a box the user has ticked since
  let configsPending = 0;
  let seq = 0;
  let newFrame = false; // a camera frame arrived since the last one sent
  let mode = "camera";
  let cameraOn = false;
  let recent = []; // arrival times of the last results, for the FPS
  let playback = null; // file mode: {kind, el, results}

  // -- status line -------------------------------------------------------------------------------
  function status(text, cls) {
    const el = $("status");
    el.textContent = text;
    el.className = "status " + (cls || "");
  }
  function notice(text) {
    $("notice").textContent = text;
    $("notice").hidden = !text;
  }

  // -- settings ----------------------------------------------------------------------------------
  const consumerBoxes = () => [...document.querySelectorAll("#consumers input")];
  const chosenConsumers = () => consumerBoxes().filter((b) => b.checked).map((b) => b.value);
  const frameSize = () => parseInt($("size").value, 10);
  const mirrored = () => $("mirror").checked;

  function applyParams() {
    if (params.has("size")) $("size").value = params.get("size");
    if (params.has("mirror")) $("mirror").checked = params.get("mirror") !== "0";
    if (params.has("consumers")) {
      const want = params.get("consumers").split(",");
      consumerBoxes().forEach((b) => { b.checked = want.includes(b.value); });
    }
  }

  function showConfig(consumers, filter) {
    stats.config = { consumers, filter };
    if (configsPending > 0) return; // a newer choice is on its way: its answer will show it
    consumerBoxes().forEach((b) => { b.checked = consumers.includes(b.value); });
    if (filter) $("filter").value = filter;
  }

  function sendConfig() {
    if (ws && ws.readyState === WebSocket.OPEN) {
      configsPending += 1;
      ws.send(JSON.stringify({ type: "config", consumers: chosenConsumers(), filter: $("filter").value }));
    }
  }

  // -- connection --------------------------------------------------------------------------------
  function connect() {
    $("reconnect").hidden = true;
    status("connecting…");
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(scheme + location.host + "/ws");
    configsPending = 0;
    ws.binaryType = "arraybuffer";
    ws.onopen = () => { stats.connected = true; status("connected", "ok"); };
    ws.onmessage = (ev) => onMessage(JSON.parse(ev.data));
    ws.onclose = (ev) => {
      stats.connected = false;
      stats.closeCode = ev.code;
      stats.closeReason = ev.reason;
      inFlight = null;
      status(`disconnected (${ev.code}${ev.reason ? ": " + ev.reason : ""})`, "bad");
      $("reconnect").hidden = false;
    };
  }

  function onMessage(msg) {
    if (msg.type === "hello") {
      stats.hello = msg;
      connections = msg.connections;
      const sel = $("filter");
      sel.replaceChildren(...msg.filters.map((f) => new Option(f, f)));
      showConfig(msg.consumers, msg.filter);
      $("server-info").textContent = `handsdk ${msg.version} · backend ${msg.backend}` +
        (msg.device ? ` (${msg.device})` : "");
      const wantFilter = params.get("filter");
      if (params.has("consumers") || (wantFilter && wantFilter !== msg.filter)) {
        applyParams();
        if (wantFilter) sel.value = wantFilter;
        sendConfig();
      }
      spellerPanel(null, msg.spell_from);
      pump();
    } else if (msg.type === "result") {
      onResult(msg);
    } else if (msg.type === "config") {
      configsPending = Math.max(0, configsPending - 1);
      showConfig(msg.consumers, msg.filter);
      spellerPanel(null, msg.spell_from);
    } else if (msg.type === "reset") {
      spellerPanel({ text: "", current: null, progress: 0 });
    } else if (msg.type === "error") {
      stats.errors[msg.code] = (stats.errors[msg.code] || 0) + 1;
      if (msg.code === "bad_config") { // refused: show what the server still runs
        configsPending = Math.max(0, configsPending - 1);
        if (stats.config) showConfig(stats.config.consumers, stats.config.filter);
      }
      status(`server: ${msg.code}: ${msg.message}`, "bad");
      if (inFlight && msg.id === inFlight.id) {
        inFlight = null;
        pump();
      }
    }
  }

  // -- camera -> server --------------------------------------------------------------------------
  async function startCamera() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      notice("The camera needs a secure page: open this on the server's machine as http://127.0.0.1 " +
             "(or localhost), or over https. File mode works here.");
      return;
    }
    try {
      video.srcObject = await navigator.mediaDevices.getUserMedia(
        { video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
      await video.play();
    } catch (err) {
      notice(`No camera (${err.name}: ${err.message}). File mode works without one.`);
      return;
    }
    cameraOn = true;
    notice("");
    if ("requestVideoFrameCallback" in HTMLVideoElement.prototype) {
      const onFrame = () => { newFrame = true; idle(); pump(); video.requestVideoFrameCallback(onFrame); };
      video.requestVideoFrameCallback(onFrame);
    } else {
      const tick = () => { newFrame = true; idle(); pump(); requestAnimationFrame(tick); };
      requestAnimationFrame(tick);
    }
  }

  // draws the plain camera picture while no results come (not connected yet, or disconnected)
  function idle() {
    if (mode === "camera" && !(ws && ws.readyState === WebSocket.OPEN) && video.videoWidth) {
      const [w, h] = sizeFor(video.videoWidth, video.videoHeight);
      draw(video, w, h, null, mirrored());
    }
  }

  function sizeFor(w, h) {
    const s = frameSize();
    return [s, Math.round((s * h) / w)];
  }

  function pump() {
    if (mode !== "camera" || !cameraOn || inFlight || !newFrame || document.hidden) return;
    if (!ws || ws.readyState !== WebSocket.OPEN || !stats.hello) return;
    newFrame = false;
    sendFrame();
  }

  async function sendFrame() {
    const [w, h] = sizeFor(video.videoWidth, video.videoHeight);
    if (capture.width !== w || capture.height !== h) {
      capture.width = w;
      capture.height = h;
    }
    const id = (seq = (seq + 1) >>> 0);
    const t = performance.now(); // the frame's timestamp: the tracker's clock and the RTT's start
    inFlight = { id, t };
    cctx.drawImage(video, 0, 0, w, h);
    const blob = await new Promise((resolve) => capture.toBlob(resolve, "image/jpeg", 0.8));
    if (!blob || !ws || ws.readyState !== WebSocket.OPEN) {
      inFlight = null;
      return;
    }
    const body = new Uint8Array(await blob.arrayBuffer());
    const msg = new ArrayBuffer(16 + body.length);
    const head = new DataView(msg);
    MAGIC.forEach((b, i) => head.setUint8(i, b));
    head.setUint32(4, id, true);
    head.setFloat64(8, t, true);
    new Uint8Array(msg, 16).set(body);
    ws.send(msg);
    stats.sent++;
    stats.size = [w, h];
  }

  function onResult(msg) {
    if (!inFlight || msg.id !== inFlight.id) return; // a frame from before a reconnect
    const sent = inFlight.t;
    const r = msg.result;
    if (mode === "camera") draw(capture, capture.width, capture.height, r, mirrored());
    const now = performance.now();
    inFlight = null;
    record(r, now - sent, now, msg.server_ms);
    spellerPanel(msg.speller, undefined);
    pump();
  }

  // -- statistics --------------------------------------------------------------------------------
  function percentile(values, p) {
    if (!values.length) return null;
    const s = [...values].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
  }

  function record(r, rtt, now, serverMs) {
    stats.frames++;
    stats.lastResult = r;
    if (r.hands.length) stats.withHands++;
    stats.hands += r.hands.length;
    stats.hands21 += r.hands.filter((h) => h.landmarks.length === 21).length;
    for (const hand of r.hands) {
      for (const [key, label] of Object.entries(hand.labels)) {
        const seen = (stats.labels[key] = stats.labels[key] || {});
        seen[label.name] = (seen[label.name] || 0) + 1;
      }
    }
    stats.rtt.push(rtt);
    if (stats.rtt.length > RTT_KEEP) stats.rtt.splice(0, stats.rtt.length - RTT_KEEP);
    if (stats.firstAt === null) stats.firstAt = now;
    stats.lastAt = now;
    stats.meanFps = stats.frames > 1 ? (1000 * (stats.frames - 1)) / (now - stats.firstAt) : 0;
    recent.push(now);
    while (recent.length && recent[0] < now - 2000) recent.shift();
    stats.fps = recent.length > 1 ? (1000 * (recent.length - 1)) / (now - recent[0]) : 0;
    const last = stats.rtt.slice(-300);
    stats.rttP50 = percentile(last, 50);
    stats.rttP99 = percentile(last, 99);
    stats.serverMs = serverMs;
    stats.serverTotalMs += serverMs ? serverMs.total : 0;
    $("fps").textContent = stats.fps.toFixed(1);
    $("rtt50").textContent = stats.rttP50.toFixed(0);
    $("rtt99").textContent = stats.rttP99.toFixed(0);
    $("server").textContent = serverMs ? serverMs.total.toFixed(0) : "–";
    $("hands").textContent = r.hands.length;
  }

  // -- drawing -----------------------------------------------------------------------------------
  function fingerOf(i) {
    return i === 0 ? 4 : Math.min(4, Math.floor((i - 1) / 4));
  }

  function draw(src, w, h, result, mirror) {
    if (view.width !== w || view.height !== h) {
      view.width = w;
      view.height = h;
    }
    vctx.save();
    if (mirror) {
      vctx.translate(w, 0);
      vctx.scale(-1, 1);
    }
    vctx.drawImage(src, 0, 0, w, h);
    vctx.restore();
    if (!result) return;
    const [iw, ih] = result.image_size;
    const sx = w / iw;
    const sy = h / ih;
    const X = (x) => (mirror ? w - x * sx : x * sx);
    const unit = Math.max(0.5, w / 640);
    for (const hand of result.hands) {
      const pts = hand.landmarks.map((p) => [X(p[0]), p[1] * sy]);
      vctx.lineWidth = 2.5 * unit;
      vctx.strokeStyle = "rgba(255,255,255,0.85)";
      vctx.beginPath();
      for (const [a, b] of connections) {
        vctx.moveTo(pts[a][0], pts[a][1]);
        vctx.lineTo(pts[b][0], pts[b][1]);
      }
      vctx.stroke();
      pts.forEach(([x, y], i) => {
        vctx.fillStyle = i === 0 ? "#ffffff" : FINGERS[fingerOf(i)];
        vctx.beginPath();
        vctx.arc(x, y, 3.5 * unit, 0, 2 * Math.PI);
        vctx.fill();
      });
      const lines = [`#${hand.track_id} ${hand.handedness.label}`];
      for (const [key, label] of Object.entries(hand.labels)) {
        lines.push(`${KEY_NAMES[key] || key} ${label.name} ${Math.round(label.score * 100)}%`);
      }
      const xs = pts.map((p) => p[0]);
      const ys = pts.map((p) => p[1]);
      label(lines, Math.min(...xs), Math.min(...ys), w, unit);
    }
  }

  function label(lines, x, top, w, unit) {
    const size = Math.round(14 * unit);
    vctx.font = `600 ${size}px system-ui, sans-serif`;
    const width = Math.max(...lines.map((l) => vctx.measureText(l).width)) + 10 * unit;
    const height = lines.length * (size + 4 * unit) + 6 * unit;
    const left = Math.min(Math.max(2, x), w - width - 2);
    const y = Math.max(2, top - height - 8 * unit);
    vctx.fillStyle = "rgba(0,0,0,0.65)";
    vctx.fillRect(left, y, width, height);
    lines.forEach((l, i) => {
      vctx.fillStyle = i === 0 ? "#b8c2d0" : "#4cd97b";
      vctx.fillText(l, left + 5 * unit, y + (i + 1) * (size + 4 * unit) - 2 * unit);
    });
  }

  // -- fingerspelling ----------------------------------------------------------------------------
  function spellerPanel(sp, spellFrom) {
    if (spellFrom !== undefined) {
      $("spell-note").textContent = spellFrom
        ? `spells ${spellFrom === "sign" ? "ASL letters" : "digits"}: hold a sign steady to add it`
        : "switch on ASL letters or digits to spell";
    }
    if (!sp) return;
    stats.spelled = sp.text;
    $("spelled").textContent = sp.text + "_";
    $("current").textContent = sp.current ? `${sp.current.name} ${Math.round(sp.current.score * 100)}%` : "–";
    $("hold").style.width = `${Math.round(sp.progress * 100)}%`;
  }

  // -- file mode ---------------------------------------------------------------------------------
  function fileStatus(text) {
    $("file-status").textContent = text;
  }

  async function trackFile(file) {
    stopPlayback();
    $("download").hidden = true;
    const isPhoto = file.type.startsWith("image/") || /\.(jpe?g|png|bmp|webp|tiff?)$/i.test(file.name);
    const query = new URLSearchParams({ name: file.name, consumers: chosenConsumers().join(","),
                                        filter: $("filter").value });
    stats.file = { name: file.name, frames: 0, withHands: 0, labels: {}, done: false, error: null };
    const most = stats.hello && stats.hello.limits.max_upload_bytes;
    if (most && file.size > most) {
      stats.file.error = `the file is ${file.size} bytes; this server takes at most ${most}`;
      fileStatus(stats.file.error);
      return;
    }
    fileStatus(`uploading ${file.name}…`);
    let resp;
    try {
      resp = await fetch("/api/track?" + query, { method: "POST", body: file });
    } catch (err) {
      stats.file.error = String(err);
      fileStatus(`upload failed: ${err}`);
      return;
    }
    if (!resp.ok) {
      const body = await resp.json().catch(() => ({ error: resp.statusText }));
      stats.file.error = body.error;
      fileStatus(`refused (${resp.status}): ${body.error}`);
      return;
    }
    const total = parseInt(resp.headers.get("X-Handsdk-Frames") || "0", 10);
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    const lines = [];
    const results = [];
    let buf = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (value) buf += decoder.decode(value, { stream: !done });
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (!line) continue;
        const r = JSON.parse(line);
        lines.push(line + "\n");
        results.push(r);
        stats.file.frames++;
        if (r.hands.length) stats.file.withHands++;
        for (const hand of r.hands) {
          for (const [key, lab] of Object.entries(hand.labels)) stats.file.labels[key + ":" + lab.name] = 1;
        }
      }
      fileStatus(`tracked ${results.length}${total ? " / " + total : ""} frames`);
      if (done) break;
    }
    const a = $("download");
    a.href = URL.createObjectURL(new Blob(lines, { type: "application/x-ndjson" }));
    a.download = file.name.replace(/\.[^.]*$/, "") + ".jsonl";
    a.hidden = false;
    const withHand = results.filter((r) => r.hands.length).length;
    fileStatus(`${results.length} frame${results.length === 1 ? "" : "s"}, a hand in ${withHand}`);
    stats.file.done = true;
    play(file, isPhoto, results);
  }

  function play(file, isPhoto, results) {
    const url = URL.createObjectURL(file);
    if (isPhoto) {
      const img = new Image();
      img.onload = () => {
        const [w, h] = fit(img.naturalWidth, img.naturalHeight);
        draw(img, w, h, results[0], false);
      };
      img.src = url;
      playback = { kind: "photo", el: img, url };
      return;
    }
    const el = document.createElement("video");
    Object.assign(el, { src: url, muted: true, loop: true, playsInline: true });
    playback = { kind: "video", el, url, results };
    const stamps = results.map((r) => r.timestamp_ms);
    const tick = () => {
      if (!playback || playback.el !== el) return;
      if (el.videoWidth) {
        const [w, h] = fit(el.videoWidth, el.videoHeight);
        draw(el, w, h, results[nearest(stamps, el.currentTime * 1000)], false);
      }
      requestAnimationFrame(tick);
    };
    el.play().then(() => requestAnimationFrame(tick), (err) => fileStatus(`cannot play it here: ${err}`));
  }

  function nearest(sorted, t) {
    let lo = 0;
    let hi = sorted.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid] < t) lo = mid + 1;
      else hi = mid;
    }
    return lo > 0 && t - sorted[lo - 1] < sorted[lo] - t ? lo - 1 : lo;
  }

  function fit(w, h) {
    const k = Math.min(1, 960 / Math.max(w, h));
    return [Math.round(w * k), Math.round(h * k)];
  }

  function stopPlayback() {
    if (!playback) return;
    if (playback.kind === "video") playback.el.pause();
    URL.revokeObjectURL(playback.url);
    playback = null;
  }

  function setMode(m) {
    mode = m;
    $("file-panel").hidden = m !== "file";
    $("spell-panel").hidden = m !== "camera";
    if (m === "camera") {
      stopPlayback();
      if (!cameraOn) startCamera();
      if (!ws || ws.readyState === WebSocket.CLOSED) connect();
      pump();
    }
  }

  // -- wiring ------------------------------------------------------------------------------------
  consumerBoxes().forEach((b) => b.addEventListener("change", sendConfig));
  $("filter").addEventListener("change", sendConfig);
  $("clear").addEventListener("click", () => ws && ws.readyState === WebSocket.OPEN &&
    ws.send(JSON.stringify({ type: "reset" })));
  $("reconnect").addEventListener("click", connect);
  document.querySelectorAll("input[name=mode]").forEach((r) =>
    r.addEventListener("change", () => setMode(r.value)));
  document.addEventListener("visibilitychange", pump);
  const drop = $("drop");
  drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    if (ev.dataTransfer.files.length) trackFile(ev.dataTransfer.files[0]);
  });
  $("file").addEventListener("change", (ev) => { if (ev.target.files.length) trackFile(ev.target.files[0]); });

  applyParams();
  if (params.get("mode") === "file") {
    document.querySelector("input[name=mode][value=file]").checked = true;
    setMode("file");
  }
  connect();
  if (mode === "camera") startCamera();
})();
