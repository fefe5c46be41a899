using System.Buffers;
using System.IO.Pipelines;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Procurement.Server.Http;

/// <summary>
/// One cleartext port for gRPC (HTTP/2 with prior knowledge) and HTTP/JSON (HTTP/1.1 or HTTP/2).
/// Kestrel serves a cleartext endpoint that allows both versions as HTTP/1.1 only, for want of ALPN.
/// This reads a connection's first bytes without consuming them: the HTTP/2 client preface (RFC 9113
/// §3.4) is answered as ALPN "h2" would be, anything else goes to HTTP/1.1.
/// </summary>
internal static class PriorKnowledgeHttp2
{
    private static readonly byte[] Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray();

    /// <summary>Lets an endpoint of both versions (Kestrel's default) speak both in cleartext; TLS endpoints
    /// keep their ALPN. Protocols are left unset: Kestrel warns that cleartext HTTP/2 is off when they are set.</summary>
    public static void UseHttp1AndPriorKnowledgeHttp2(this ListenOptions listen, TimeSpan firstBytesTimeout)
    {
        listen.Use(next => async connection =>
        {
            if (connection.Features.Get<ITlsConnectionFeature>() is null
                && await StartsWithPrefaceAsync(connection.Transport.Input, firstBytesTimeout))
            {
                // Kestrel chooses HTTP/2 from these two features alone; the HTTP/2 stream then takes its
                // scheme from the request (KestrelServerOptions.AllowAlternateSchemes), so it stays "http".
                connection.Features.Set<ITlsConnectionFeature>(Negotiated.H2);
                connection.Features.Set<ITlsApplicationProtocolFeature>(Negotiated.H2);
            }
            await next(connection);
        });
    }

    /// <summary>Whether the connection opens with the preface; false as soon as a byte differs, at end
    /// of input, or when the client sends too little in time (HTTP/1.1's own timeouts then apply).</summary>
    private static async Task<bool> StartsWithPrefaceAsync(PipeReader input, TimeSpan timeout)
    {
        using var timer = new CancellationTokenSource(timeout);
        await using var cancel = timer.Token.Register(input.CancelPendingRead);
        while (true)
        {
            var read = await input.ReadAsync();
            var verdict = Compare(read.Buffer);
            if (verdict is { } isPreface)
            {
                // Nothing consumed or examined: the chosen protocol reads these bytes again at once.
                input.AdvanceTo(read.Buffer.Start);
                return isPreface;
            }
            // A prefix of the preface so far: wait for more bytes.
            input.AdvanceTo(read.Buffer.Start, read.Buffer.End);
            if (read.IsCompleted || read.IsCanceled)
            {
                return false;
            }
        }
    }

    /// <summary>True for the whole preface, false once a byte differs, null while a prefix of it.</summary>
    private static bool? Compare(ReadOnlySequence<byte> buffer)
    {
        var length = (int)Math.Min(buffer.Length, Preface.Length);
        Span<byte> head = stackalloc byte[Preface.Length];
        buffer.Slice(0, length).CopyTo(head);
        if (!head[..length].SequenceEqual(Preface.AsSpan(0, length)))
        {
            return false;
        }
        return length == Preface.Length ? true : null;
    }

    private sealed class Negotiated : ITlsConnectionFeature, ITlsApplicationProtocolFeature
    {
        public static readonly Negotiated H2 = new();

        public ReadOnlyMemory<byte> ApplicationProtocol { get; } = "h2"u8.ToArray();

        public X509Certificate2? ClientCertificate { get => null; set { } }

        public Task<X509Certificate2?> GetClientCertificateAsync(CancellationToken cancellationToken) =>
            Task.FromResult<X509Certificate2?>(null);
    }
}
