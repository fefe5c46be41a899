using System.Diagnostics;

namespace Procurement.Benchmarks;

/// <summary>
/// Beside the load, outside the server: writes 4 KiB and flushes it to disk every 10 ms on the
/// benchmark's filesystem, timing each flush. Slow flushes here in the seconds the server's requests
/// are slow place a latency stall in the host's storage rather than in the server.
/// </summary>
public sealed class FsyncProbe : IDisposable
{
    private readonly FileStream _file;
    private readonly Thread _thread;
    private readonly List<(long At, double Ms)> _flushes = [];
    private volatile bool _stopped;

    public FsyncProbe(string path)
    {
        _file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1, FileOptions.None);
        _thread = new Thread(Run) { IsBackground = true, Name = "fsync probe" };
        _thread.Start();
    }

    private void Run()
    {
        var block = new byte[4096];
        while (!_stopped)
        {
            Thread.Sleep(10);
            _file.Position = 0;
            _file.Write(block);
            var started = Stopwatch.GetTimestamp();
            _file.Flush(flushToDisk: true);
            var ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            lock (_flushes)
            {
                _flushes.Add((started, ms));
            }
        }
    }

    /// <summary>The slowest flush and the flushes over 30 ms that started between two <see cref="Stopwatch"/> timestamps.</summary>
    public (double MaxMs, int Over30Ms) Between(long from, long to)
    {
        lock (_flushes)
        {
            var window = _flushes.Where(f => f.At >= from && f.At <= to).Select(f => f.Ms).ToList();
            return (window.Count == 0 ? 0 : window.Max(), window.Count(ms => ms > 30));
        }
    }

    public void Dispose()
    {
        _stopped = true;
        _thread.Join();
        _file.Dispose();
    }
}
