using System.Security.Cryptography;
using System.Text;
using Procurement.Storage;
using Procurement.Storage.Repositories;

namespace Procurement.Server.Auth;

/// <summary>Creating, hashing, listing and revoking API keys. Keys are random and stored only as SHA-256.</summary>
public sealed class ApiKeys(IProcurementStore store, TimeProvider time)
{
    private const string KeyPrefix = "pk_";

    /// <summary>Keys are 256 random bits, so a fast hash is enough; a slow hash would only slow every call.</summary>
    public static string Hash(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    public static string NewKey() => KeyPrefix + Base64Url(RandomNumberGenerator.GetBytes(32));

    public async Task<(ApiKeyRecord Record, string Key)> CreateAsync(Role role, string? tenantId, string? label, CancellationToken cancellationToken)
    {
        var key = NewKey();
        var record = new ApiKeyRecord("key_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6)), Hash(key),
            RoleNames.Of(role), role == Role.Customer ? tenantId : null, label, time.GetUtcNow(), null);
        await store.WriteAsync(async s =>
        {
            await s.ApiKeys.InsertAsync(record);
            return true;
        }, cancellationToken);
        return (record, key);
    }

    /// <summary>Registers a key chosen outside (e.g. a container's bootstrap secret) unless it is already known.</summary>
    public Task<bool> EnsureAsync(string key, Role role, string? tenantId, string label, CancellationToken cancellationToken)
    {
        var hash = Hash(key);
        return store.WriteAsync(async s =>
        {
            if (await s.ApiKeys.FindByHashAsync(hash) is not null)
            {
                return false;
            }

            await s.ApiKeys.InsertAsync(new ApiKeyRecord("key_" + hash[..12], hash, RoleNames.Of(role), tenantId, label, time.GetUtcNow(), null));
            return true;
        }, cancellationToken);
    }

    public Task<IReadOnlyList<ApiKeyRecord>> ListAsync(CancellationToken cancellationToken) =>
        store.ReadAsync(s => s.ApiKeys.ListAsync(), cancellationToken);

    public Task<bool> RevokeAsync(string keyId, CancellationToken cancellationToken) =>
        store.WriteAsync(s => s.ApiKeys.RevokeAsync(keyId, time.GetUtcNow()), cancellationToken);

    /// <summary>The principal of a live key, or null. Read on every call, so a revocation takes effect at once.</summary>
    public async Task<Principal?> AuthenticateAsync(string key, CancellationToken cancellationToken)
    {
        var record = await store.ReadStatementAsync(s => s.ApiKeys.FindByHashAsync(Hash(key)), cancellationToken);
        if (record is null || record.RevokedAt is not null || !RoleNames.TryParse(record.Role, out var role))
        {
            return null;
        }

        return new Principal(record.Id, role, record.TenantId);
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
