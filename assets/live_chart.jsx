// A plotly.js chart that draws a whole figure once, then appends live points without re-sending it.
//
// Props: figure = {data, layout, seq} (x values in epoch ms, UTC), tail = {seq, points: [[trace, x, y], ...]}.
// The figure is current up to figure.seq; a tail with the next seq is applied on top of it: a point whose x
// equals the trace's last x replaces it (the current bucket changed), a later one is appended. A tail that
// skips a seq means updates were missed: onResync asks the server for the whole figure again.
import { useEffect, useRef } from "react";
import Plotly from "plotly.js-basic-dist-min";

const pad = (n, width = 2) => String(n).padStart(width, "0");
// Plotly draws date strings as given: pass the viewer's local wall time.
const localTime = (ms) => {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
};

const themed = (layout, element) => {
  const color = getComputedStyle(element).color;
  return { ...layout, autosize: true, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
           font: { ...(layout.font || {}), color } };
};

export function LiveChart({ figure, tail, onResync, id }) {
  const element = useRef(null);
  const drawn = useRef({ seq: -1, lastX: [], ready: Promise.resolve(), pending: [], frame: null });

  useEffect(() => {
    if (!element.current || !figure || !figure.data) return;
    const state = drawn.current;
    const data = figure.data.map((trace) => ({ ...trace, x: trace.x.map(localTime), y: [...trace.y] }));
    state.lastX = figure.data.map((trace) => (trace.x.length ? trace.x[trace.x.length - 1] : -Infinity));
    state.seq = figure.seq;
    state.pending = [];
    state.ready = Plotly.react(element.current, data, themed(figure.layout, element.current),
                               { responsive: true, displaylogo: false });
  }, [figure]);

  // Follow the light/dark switch: the theme changes the page's text colour, the chart takes it over.
  useEffect(() => {
    const observer = new MutationObserver(() => {
      const chart = element.current;
      if (chart && chart.layout) Plotly.relayout(chart, { "font.color": getComputedStyle(chart).color });
    });
    observer.observe(document.documentElement, { attributes: true, attributeFilter: ["class", "style"] });
    return () => observer.disconnect();
  }, []);

  useEffect(() => {
    if (!tail || !tail.points) return;
    const state = drawn.current;
    state.ready.then(() => {
      if (tail.seq <= state.seq) return; // already drawn
      if (tail.seq > state.seq + 1) { // missed updates: redraw from the server's figure
        if (onResync) onResync();
        return;
      }
      state.seq = tail.seq;
      state.pending.push(...tail.points);
      // Many updates in one frame cost one redraw.
      if (state.frame === null) state.frame = requestAnimationFrame(() => {
        state.frame = null;
        const chart = element.current;
        if (!chart || !chart.data) return;
        for (const [trace, x, y] of state.pending.splice(0)) {
          const series = chart.data[trace];
          if (!series) continue;
          if (x === state.lastX[trace]) {
            series.y[series.y.length - 1] = y;
          } else if (x > state.lastX[trace]) {
            series.x.push(localTime(x));
            series.y.push(y);
            state.lastX[trace] = x;
          }
        }
        const started = performance.now();
        Plotly.redraw(chart);
        // Let tests and benchmarks see what is on screen, and what drawing it cost.
        chart.dataset.drawMs = (performance.now() - started).toFixed(1);
        chart.dataset.seq = String(state.seq);
      });
    });
  }, [tail]);

  return <div ref={element} id={id} data-seq="" style={{ width: "100%" }} />;
}
