// Draws report.html's plots from the JSON in #vigil-data: the ROC curve,
// one score timeline per video (labelled frames, events, threshold) and
// the boxes over each event's peak frame. When done it records on <body>
// what it drew (data-rendered, data-events-drawn, data-snapshots-drawn,
// data-boxes-drawn), which is what the end-to-end test reads back.
(function () {
  "use strict";
  const body = document.body;
  const colours = { score: "#1a73e8", label: "rgba(217,48,37,0.16)", event: "rgba(232,113,10,0.30)",
    eventMark: "#e8710a", threshold: "#5f6b73", axis: "#9aa4ab", text: "#1d2327", hot: "#d93025", warm: "#f9ab00" };

  // A canvas drawn at the screen's pixel density, in CSS-pixel coordinates.
  function context(canvas, width, height) {
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    canvas.style.aspectRatio = width + " / " + height;
    const ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    ctx.font = "12px system-ui, 'DejaVu Sans', sans-serif";
    return ctx;
  }

  function ticks(low, high, count) {
    const span = high - low || 1;
    const step0 = Math.pow(10, Math.floor(Math.log10(span / count)));
    const step = [1, 2, 5, 10].map((m) => m * step0).find((s) => span / s <= count) || step0 * 10;
    const out = [];
    for (let v = Math.ceil(low / step) * step; v <= high + 1e-9; v += step) out.push(v);
    return out;
  }

  function label(v) {
    return Math.abs(v) >= 1000 || Number.isInteger(v) ? String(Math.round(v)) : v.toFixed(Math.abs(v) < 1 ? 2 : 1);
  }

  function drawRoc(roc) {
    const canvas = document.getElementById("roc-canvas");
    if (!canvas || !roc) return;
    const size = 420, pad = 44;
    const ctx = context(canvas, size, size);
    const x = (f) => pad + f * (size - pad - 12), y = (t) => size - pad - t * (size - pad - 12);
    ctx.strokeStyle = colours.axis;
    ctx.strokeRect(x(0), y(1), x(1) - x(0), y(0) - y(1));
    ctx.setLineDash([4, 4]);
    ctx.beginPath(); ctx.moveTo(x(0), y(0)); ctx.lineTo(x(1), y(1)); ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = colours.text;
    for (const v of [0, 0.25, 0.5, 0.75, 1]) {
      ctx.textAlign = "center"; ctx.fillText(v.toFixed(2), x(v), y(0) + 16);
      ctx.textAlign = "right"; ctx.fillText(v.toFixed(2), x(0) - 4, y(v) + 4);
    }
    ctx.textAlign = "center";
    ctx.fillText("false positive rate", x(0.5), size - 8);
    ctx.save(); ctx.translate(12, y(0.5)); ctx.rotate(-Math.PI / 2); ctx.fillText("true positive rate", 0, 0); ctx.restore();
    ctx.strokeStyle = colours.score; ctx.lineWidth = 2;
    ctx.beginPath();
    roc.fpr.forEach((f, i) => (i ? ctx.lineTo(x(f), y(roc.tpr[i])) : ctx.moveTo(x(f), y(roc.tpr[i]))));
    ctx.stroke();
    ctx.textAlign = "right"; ctx.font = "bold 14px system-ui, 'DejaVu Sans', sans-serif";
    ctx.fillText("AUROC " + roc.auroc.toFixed(4), x(1) - 8, y(0) - 10);
  }

  // One video: the peak score of each bin, labelled frames, events, threshold.
  function drawTimeline(t, threshold, list, tip) {
    const figure = document.createElement("div");
    figure.className = "timeline";
    const title = document.createElement("h3");
    const binText = t.bin > 1 ? ", each point the highest score of " + t.bin + " frames" : "";
    const leftOut = t.events_left_out ? "; " + t.events_left_out + " more events not drawn (events.jsonl has them)" : "";
    const events = t.events.length + t.events_left_out;
    title.textContent = t.video + ": " + t.frames + " frames, " + events + (events === 1 ? " event" : " events") + binText + leftOut;
    const canvas = document.createElement("canvas");
    canvas.className = "plot";
    figure.append(title, canvas);
    list.append(figure);
    const width = 1000, height = 170, left = 48, right = 10, top = 10, bottom = 24;
    const ctx = context(canvas, width, height);
    // The scale runs from the 5th percentile up: the first frames of a video
    // (little temporal context) score far below the rest and would flatten
    // everything near the threshold; lower points sit on the bottom edge.
    const values = t.peaks.filter(Number.isFinite).sort((a, b) => a - b);
    const floor = values.length ? values[Math.floor(0.05 * (values.length - 1))] : threshold;
    let low = Math.min(threshold, floor), high = Math.max(threshold, values.length ? values[values.length - 1] : threshold);
    if (!(high > low)) { low -= 1; high += 1; }
    const frames = Math.max(t.frames, 1);
    const x = (frame) => left + (frame / frames) * (width - left - right);
    const y = (s) => top + (1 - (s - low) / (high - low)) * (height - top - bottom);
    ctx.fillStyle = colours.label;
    for (const [a, b] of t.labelled) ctx.fillRect(x(a), top, Math.max(x(b + 1) - x(a), 1), height - top - bottom);
    ctx.fillStyle = colours.event;
    for (const [a, b] of t.events) ctx.fillRect(x(a), top, Math.max(x(b + 1) - x(a), 1), height - top - bottom);
    ctx.strokeStyle = colours.axis;
    ctx.strokeRect(left, top, width - left - right, height - top - bottom);
    ctx.fillStyle = colours.text;
    ctx.textAlign = "right";
    for (const v of ticks(low, high, 4)) ctx.fillText(label(v), left - 4, y(v) + 4);
    ctx.textAlign = "center";
    for (const v of ticks(0, frames, 8)) ctx.fillText(label(v), x(v), height - 8);
    ctx.strokeStyle = colours.score; ctx.lineWidth = 1.5;
    ctx.beginPath();
    t.peaks.forEach((s, i) => {
      const px = x(Math.min((i + 0.5) * t.bin, frames)), py = y(Number.isFinite(s) ? Math.max(s, low) : low);
      i ? ctx.lineTo(px, py) : ctx.moveTo(px, py);
    });
    ctx.stroke();
    ctx.strokeStyle = colours.threshold; ctx.setLineDash([6, 4]); ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(left, y(threshold)); ctx.lineTo(width - right, y(threshold)); ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = colours.eventMark;
    for (const [, , peak] of t.events) {
      ctx.beginPath(); ctx.moveTo(x(peak + 0.5), top + 7); ctx.lineTo(x(peak + 0.5) - 4, top); ctx.lineTo(x(peak + 0.5) + 4, top); ctx.fill();
    }
    canvas.addEventListener("mousemove", (e) => {
      const box = canvas.getBoundingClientRect();
      const frame = ((e.clientX - box.left) * (width / box.width) - left) / (width - left - right) * frames;
      const i = Math.floor(frame / t.bin);
      if (frame < 0 || i >= t.peaks.length) { tip.style.display = "none"; return; }
      const first = i * t.bin, last = Math.min(first + t.bin, t.frames) - 1;
      const inEvent = t.events.find(([a, b]) => a <= last && b >= first);
      tip.textContent = (first === last ? "frame " + first : "frames " + first + "-" + last) + ": score " + t.peaks[i].toFixed(3) +
        (inEvent ? " (event " + inEvent[0] + "-" + inEvent[1] + ")" : "");
      tip.style.left = e.clientX + 12 + "px"; tip.style.top = e.clientY + 12 + "px"; tip.style.display = "block";
    });
    canvas.addEventListener("mouseleave", () => (tip.style.display = "none"));
    return t.events.length;
  }

  // The boxes of an event's peak frame, in the frame's own pixels: the
  // highest-scoring box in red, the others in amber, each with its score.
  function drawBoxes(canvas, shot) {
    const ctx = context(canvas, shot.width, shot.height);
    canvas.style.aspectRatio = "";
    const line = Math.max(2, shot.width / 240), size = Math.max(11, Math.round(shot.width / 40));
    ctx.font = "bold " + size + "px system-ui, 'DejaVu Sans', sans-serif";
    const top = Math.max(...shot.boxes.map((b) => b.score));
    // The highest last, so that its label is drawn over the others.
    const order = shot.boxes.slice().sort((a, b) => a.score - b.score);
    for (const b of order) {
      const colour = b.score === top ? colours.hot : colours.warm;
      ctx.strokeStyle = colour; ctx.lineWidth = line;
      ctx.strokeRect(b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1);
      const text = b.score.toFixed(2), w = ctx.measureText(text).width + 6, h = size + 4;
      const tx = Math.max(0, Math.min(b.x1, shot.width - w)), ty = b.y1 >= h ? b.y1 - h : Math.min(b.y2, shot.height - h);
      ctx.fillStyle = colour; ctx.fillRect(tx, ty, w, h);
      ctx.fillStyle = "#fff"; ctx.fillText(text, tx + 3, ty + h - 4);
    }
    return shot.boxes.length;
  }

  try {
    const data = JSON.parse(document.getElementById("vigil-data").textContent);
    drawRoc(data.roc);
    const tip = document.createElement("div");
    tip.className = "tip";
    body.append(tip);
    const list = document.getElementById("timeline-list");
    let events = 0;
    for (const t of data.timelines) events += drawTimeline(t, data.threshold, list, tip);
    let snapshots = 0, boxes = 0;
    document.querySelectorAll("canvas.boxes").forEach((canvas) => {
      boxes += drawBoxes(canvas, data.snapshots[Number(canvas.dataset.snapshot)]);
      snapshots += 1;
    });
    body.dataset.eventsDrawn = String(events);
    body.dataset.snapshotsDrawn = String(snapshots);
    body.dataset.boxesDrawn = String(boxes);
    body.dataset.rendered = "yes";
  } catch (error) {
    body.dataset.rendered = "error: " + error;
    const banner = document.createElement("p");
    banner.className = "error";
    banner.textContent = "This report could not draw its plots: " + error + ". scores.csv and events.jsonl beside it hold the same data.";
    body.prepend(banner);
  }
})();
