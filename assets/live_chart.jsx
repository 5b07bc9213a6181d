// A plotly.js chart that draws a whole figure once, then appends live points without re-sending it.
//
// Props: figure = {data, layout, seq, min_x_span} (x values in epoch ms, UTC), tail = {seq, points: [[trace, x, y],
// ...]}. The figure is current up to figure.seq; a tail with the next seq is applied on top of it: a point whose x
// equals the trace's last x replaces it (the current bucket changed), a later one is appended. A tail that skips a
// seq means updates were missed: onResync asks the server for the whole figure again.
import { useEffect, useRef } from "react";
import Plotly from "plotly.js-basic-dist-min";

const pad = (n, width = 2) => String(n).padStart(width, "0");
// Plotly draws date strings as given: pass the viewer's local wall time.
const localTime = (ms) => {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
};

// Colours from the page (light or dark mode): the text colour, and the panel's for the hover box, which would
// otherwise take the transparent background.
const colours = (element) => {
  const style = getComputedStyle(element);
  const panel = style.getPropertyValue("--color-panel-solid").trim();
  return { text: style.color, panel: panel || undefined };
};

const themed = (layout, element) => {
  const { text, panel } = colours(element);
  return { ...layout, autosize: true, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
           font: { ...(layout.font || {}), color: text },
           hoverlabel: { bgcolor: panel, bordercolor: text, font: { color: text } } };
};

// The time axis spans at least minSpan (a first snapshot would get an axis of milliseconds): then it ends a
// little after the newest point. Wider data gets plotly's own range back.
const xRange = (state) => {
  if (!state.minSpan || !Number.isFinite(state.maxX) || state.maxX - state.minX >= state.minSpan) return null;
  return [localTime(state.maxX - state.minSpan), localTime(state.maxX + state.minSpan / 10)];
};

const fitX = (layout, state) => {
  const range = xRange(state);
  if (!range && !state.fixedX) return false;
  state.fixedX = Boolean(range);
  layout.xaxis = { ...(layout.xaxis || {}), ...(range ? { range, autorange: false } : { autorange: true }) };
  return true;
};

// A short modebar (image, zoom, pan, reset): on a phone it stays clear of the title.
const CONFIG = { responsive: true, displaylogo: false,
                 modeBarButtonsToRemove: ["select2d", "lasso2d", "zoomIn2d", "zoomOut2d", "autoScale2d"] };

export function LiveChart({ figure, tail, onResync, id }) {
  const element = useRef(null);
  const drawn = useRef({ seq: -1, lastX: [], minX: Infinity, maxX: -Infinity, minSpan: 0, fixedX: false,
                         ready: Promise.resolve(), pending: [], frame: null });

  useEffect(() => {
    if (!element.current || !figure || !figure.data) return;
    const state = drawn.current;
    const data = figure.data.map((trace) => ({ ...trace, x: trace.x.map(localTime), y: [...trace.y] }));
    state.lastX = figure.data.map((trace) => (trace.x.length ? trace.x[trace.x.length - 1] : -Infinity));
    state.minX = Math.min(...figure.data.map((trace) => (trace.x.length ? trace.x[0] : Infinity)));
    state.maxX = Math.max(...state.lastX);
    state.minSpan = figure.min_x_span || 0;
    state.fixedX = false;
    state.seq = figure.seq;
    state.pending = [];
    const layout = themed(figure.layout, element.current);
    fitX(layout, state);
    state.ready = Plotly.react(element.current, data, layout, CONFIG);
  }, [figure]);

  useEffect(() => {
    const chart = element.current;
    // Follow the light/dark switch: the theme changes the page's colours, the chart takes them over.
    const observer = new MutationObserver(() => {
      if (!chart || !chart.layout) return;
      const { text, panel } = colours(chart);
      Plotly.relayout(chart, { "font.color": text, "hoverlabel.bgcolor": panel, "hoverlabel.bordercolor": text,
                               "hoverlabel.font.color": text });
    });
    observer.observe(document.documentElement, { attributes: true, attributeFilter: ["class", "style"] });
    return () => {
      observer.disconnect();
      if (chart) Plotly.purge(chart); // its resize listener goes with it
    };
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
            state.minX = Math.min(state.minX, x);
            state.maxX = Math.max(state.maxX, x);
          }
        }
        fitX(chart.layout, state);
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

// The viewer's time zone as the browser knows it, e.g. "Europe/Berlin (UTC+01:00)": the zone every time on the
// page is shown in.
export function LocalTimeZone({ id }) {
  const minutes = -new Date().getTimezoneOffset();
  const offset = `UTC${minutes < 0 ? "-" : "+"}${pad(Math.floor(Math.abs(minutes) / 60))}:${pad(Math.abs(minutes) % 60)}`;
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return <span id={id}>{zone ? `${zone} (${offset})` : offset}</span>;
}
