using Microsoft.Extensions.Logging;

namespace Procurement.Storage.Tests;

/// <summary>Keeps what is logged, for tests that assert an operator would see it (or would not).</summary>
internal sealed class ListLogger<T> : ILogger<T>
{
    public List<(LogLevel Level, int EventId, string Message)> Entries { get; } = [];

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (Entries)
        {
            Entries.Add((logLevel, eventId.Id, formatter(state, exception)));
        }
    }

    /// <summary>The messages logged with <paramref name="eventId"/>, in order.</summary>
    public List<string> Messages(int eventId)
    {
        lock (Entries)
        {
            return Entries.Where(e => e.EventId == eventId).Select(e => e.Message).ToList();
        }
    }
}
