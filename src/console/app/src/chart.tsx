// One ECharts canvas as a Preact component: loads ECharts lazily, redraws on a new option, resizes with its box.
import type { EChartsCoreOption, EChartsType } from "echarts/core";
import { useEffect, useRef, useState } from "preact/hooks";

type Runtime = typeof import("./charts-runtime.js");

let runtime: Promise<Runtime> | null = null;

/** Loads the ECharts chunk once; the app starts this early so it downloads beside the first data. */
export function loadCharts(): Promise<Runtime> {
  runtime ??= import("./charts-runtime.js");
  return runtime;
}

/** What a click on a chart element reports (a graph node's `data`, a series point). */
export interface ChartClick {
  dataType?: string;
  name?: string;
  data?: unknown;
}

/** Props of {@link EChart}. */
export interface EChartProps {
  option: EChartsCoreOption;
  /** Height in CSS pixels; the width follows the container. */
  height: number;
  /** What the chart shows, for screen readers (the canvas itself says nothing). */
  label: string;
  /** Called after each option has been applied: the chart has drawn that data. */
  onDrawn?: () => void;
  onClick?: (click: ChartClick) => void;
  className?: string;
}

/**
 * A chart that applies `option` (replacing the previous one) whenever it changes.
 *
 * @example <EChart option={{ xAxis: {...}, series: [...] }} height={240} label="Ingest rate" />
 */
export function EChart(props: EChartProps) {
  const element = useRef<HTMLDivElement>(null);
  const chart = useRef<EChartsType | null>(null);
  const latest = useRef(props);
  latest.current = props;
  const [mounted, setMounted] = useState(false);
  const [failure, setFailure] = useState<string | null>(null);

  useEffect(() => {
    let disposed = false;
    let observer: ResizeObserver | null = null;
    let frame = 0;
    loadCharts().then(
      (echarts) => {
        const el = element.current;
        if (disposed || el === null) return;
        try {
          const instance = echarts.init(el, undefined, { renderer: "canvas" });
          chart.current = instance;
          instance.on("click", (params) => latest.current.onClick?.(params as ChartClick));
          // Resize on the next frame: resizing inside the observer's callback can loop.
          observer = new ResizeObserver(() => {
            cancelAnimationFrame(frame);
            frame = requestAnimationFrame(() => chart.current?.resize());
          });
          observer.observe(el);
          setMounted(true);
        } catch (error) {
          setFailure(error instanceof Error ? error.message : String(error));
        }
      },
      (error: unknown) => {
        if (!disposed) setFailure(`charts did not load: ${String(error)}`);
      },
    );
    return () => {
      disposed = true;
      cancelAnimationFrame(frame);
      observer?.disconnect();
      chart.current?.dispose();
      chart.current = null;
    };
  }, []);

  useEffect(() => {
    const instance = chart.current;
    if (!mounted || instance === null) return;
    try {
      instance.setOption(props.option, { notMerge: true });
      latest.current.onDrawn?.();
    } catch (error) {
      setFailure(error instanceof Error ? error.message : String(error));
    }
  }, [props.option, mounted]);

  return (
    <div class={props.className ?? "echart"}>
      <div
        ref={element}
        class="echart-canvas"
        style={{ height: `${props.height}px` }}
        role="img"
        aria-label={props.label}
      />
      {failure !== null && (
        <p class="error" role="alert">
          <strong>CHART_ERROR</strong> {failure}
        </p>
      )}
    </div>
  );
}
